"""Our site's settings without the SQLite pragmas: what WAL and synchronous=NORMAL gain.

bench/signin.py runs this beside the real settings (each on a SQLite file of its own,
as journal_mode=WAL stays with a file once set) and prints the ratio.
"""

from project.settings import *  # noqa: F403
from project.settings import DATABASES

DATABASES["default"]["OPTIONS"].pop("init_command")
