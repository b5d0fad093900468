"""Imported first by the run engine's fork server (its preload list): the server dies with
the process that started it, and the workers it forks die with the server.

Importing this module anywhere else does nothing: only a process started inside
``lastmile.tuning.worker_environment`` finds the variable that arms it, and the first import
removes it.
"""

from __future__ import annotations

from lastmile.tuning import arm_fork_server

__all__ = ["ARMED"]

ARMED = arm_fork_server()
"""Whether this process was armed (a fork server on Linux started from a main thread)."""
