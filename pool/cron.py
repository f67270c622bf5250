"""arq's import path for cron: re-exports ``pool.worker.cron``."""

from .worker.cron import WEEKDAY_NAMES, CronCoroutine, CronJob, OptionType, WeekdayOptionType, cron, next_cron

__all__ = ["WEEKDAY_NAMES", "CronCoroutine", "CronJob", "OptionType", "WeekdayOptionType", "cron", "next_cron"]
