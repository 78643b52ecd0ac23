"""The decisions wing: the one scoring core and the one decision per customer.

- :mod:`~postloan.decisions.scoring`: the online scorer (one request: features once,
  gate, three models, uplift, decision);
- :mod:`~postloan.decisions.batch`: the same for a whole book (features once,
  shared by the gate, the models and the uplift models);
- :mod:`~postloan.decisions.strategy`: the handbook (grades, expected loss, signals,
  warning levels, segments), each action's effects, value terms and net benefit
  (:func:`~postloan.decisions.strategy.actions.choose`), the decision gate between
  learned effects and the constants, and the outreach queue (a view of the decisions).

Imports: :mod:`postloan.data`, :mod:`postloan.models` and the shared modules.
"""
