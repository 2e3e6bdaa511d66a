"""The project's settings with the benchmark baselines routed in; nothing else differs."""

from referral_program.settings import *  # noqa: F403

ROOT_URLCONF = "bench.urls"
