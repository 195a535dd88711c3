"""The Telegram side: the bot service, the error mapping and flood control."""

import os

# python-telegram-bot 22 warns on every RetryAfter unless this opt-in to its next behaviour
# (durations as timedelta) is set; botqueue reads both forms.
os.environ.setdefault("PTB_TIMEDELTA", "1")
