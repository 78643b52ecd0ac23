"""The simulation wing: a lender's book simulated month by month, and policy replay.

- :mod:`~postloan.simulation.simulator`: set-up, one month of the book
  (:func:`run_month`), the whole window (:func:`simulate`), forks and replays with
  common random numbers (:func:`fork`, :func:`simulate_forward`, :func:`advance_month`);
- :mod:`~postloan.simulation.steps`: one step function per mechanism;
- :mod:`~postloan.simulation.contacts`: the contact policy and each action's true effect;
- :mod:`~postloan.simulation.world`, :mod:`~postloan.simulation.tables`,
  :mod:`~postloan.simulation.config`: latent state, the canonical tables it writes, and
  its configuration;
- :mod:`~postloan.simulation.replay`: what an outreach policy (a queue) realises,
  judged on the simulator's own outcomes.

Imports: :mod:`postloan.data`, :mod:`postloan.decisions` (the replay's queues) and the
shared modules; never operations or reporting.
"""

from postloan.simulation.simulator import (
    CHARGE_OFF_MISSED,
    DEFAULT_MISSED,
    MECHANISMS,
    N_SLOTS,
    ActionSpec,
    ContactPolicy,
    Records,
    Shock,
    SimulationConfig,
    State,
    Streams,
    World,
    advance_month,
    fork,
    historical_planner,
    run_month,
    setup,
    simulate,
    simulate_forward,
    simulate_until,
)

__all__ = [
    "CHARGE_OFF_MISSED", "DEFAULT_MISSED", "MECHANISMS", "N_SLOTS", "ActionSpec",
    "ContactPolicy", "Records", "Shock", "SimulationConfig", "State", "Streams", "World",
    "advance_month", "fork", "historical_planner", "run_month", "setup", "simulate",
    "simulate_forward", "simulate_until",
]
