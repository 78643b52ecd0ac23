"""Print a self-contained HTML page to PDF with headless Chromium.

Chromium rather than WeasyPrint: it lays out the page exactly as the reviewer's browser
shows it (the same CSS, the same CJK fonts through fontconfig), the tests already drive
it to check the Chinese glyphs, and it adds no Python dependency. Debian's ``chromium``
package; ``make chromium`` installs it.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
import tempfile
from pathlib import Path

from postloan.data import io
from postloan.errors import PostloanError

log = logging.getLogger(__name__)

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")
# No network, no first-run work, no profile left behind: a report must print offline.
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu",
                  "--disable-background-networking", "--no-first-run",
                  "--disable-component-update", "--disable-sync",
                  "--no-pdf-header-footer", "--hide-scrollbars")
PDF_TIMEOUT_S = 120


def find_chromium() -> str | None:
    """The Chromium executable on PATH (or Debian's /usr/bin/chromium), else None."""
    for name in CHROMIUM_NAMES:
        path = shutil.which(name)
        if path:
            return path
    return "/usr/bin/chromium" if Path("/usr/bin/chromium").is_file() else None


def html_to_pdf(html_file: Path, pdf_file: Path, chromium: str | None = None) -> Path:
    """Print `html_file` to `pdf_file` (A4, backgrounds printed), atomically.

    Raises:
        PostloanError: no Chromium, or it failed or printed nothing (its last stderr
            lines in the message).
    """
    exe = chromium or find_chromium()
    if exe is None:
        raise PostloanError("--pdf needs headless Chromium: install Debian's chromium "
                            "package (make chromium)")
    html_file, pdf_file = Path(html_file).resolve(), Path(pdf_file)
    with tempfile.TemporaryDirectory(prefix="postloan-pdf-") as tmp:
        out = Path(tmp) / "page.pdf"
        cmd = [exe, *CHROMIUM_FLAGS, f"--user-data-dir={Path(tmp) / 'profile'}",
               f"--print-to-pdf={out}", html_file.as_uri()]
        try:
            r = subprocess.run(cmd, capture_output=True, text=True, timeout=PDF_TIMEOUT_S,
                               check=False)
        except (OSError, subprocess.TimeoutExpired) as e:
            raise PostloanError(f"chromium could not print {html_file}: {e}") from e
        if r.returncode != 0 or not out.is_file() or out.stat().st_size == 0:
            tail = " | ".join(r.stderr.strip().splitlines()[-3:])
            raise PostloanError(f"chromium could not print {html_file} (exit "
                                f"{r.returncode}): {tail}")
        io.write_bytes_atomic(out.read_bytes(), pdf_file)
    log.info("printed %s", pdf_file)
    return pdf_file


__all__ = ["CHROMIUM_FLAGS", "find_chromium", "html_to_pdf"]
