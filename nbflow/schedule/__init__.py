"""Scheduling: cron schedules, file-arrival sensors, backfill and the scheduler daemon.

cron.py (expressions, time zones, slots) and spec.py (validated schedules and sensors) are pure; daemon.py,
backfill.py and sensor.py do the work through the store and a RunStarter (work.py; the project gives its own).
"""
from .clock import Clock, SystemClock
from .spec import ScheduleSpec, SensorSpec

__all__ = ["Clock", "ScheduleSpec", "SensorSpec", "SystemClock"]
