"""The GPU lease plan: one orchestrator that spends a rare, short GPU lease in priority order.

A GPU machine is lent to about one session in ten, for 30 minutes of device time in calls of at
most 10 minutes, with 8 files of at most 16 MiB coming back. `plan.run_call` is one such call:
it resumes the plan's work folder and runs the stages of `stages.py` (preflight, calibration,
h100 profiling of s, m, l, the s supernet's training and evaluation, then extras) within the
budgets of `budget.py`, handing every finished result back through $OUT (`state.py`).
`merge.merge_results` brings a returned folder into data/, refits the surrogates and regenerates
the problems' bounds and fronts; `--rehearsal` runs the whole plan on a CPU in about a minute.
"""
