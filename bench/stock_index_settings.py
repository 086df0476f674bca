"""The site's settings without its template directory: Django's stock admin index.

Only bench/dashboard.py uses it, to serve the index it is compared with from the
same code, data and production settings, under gunicorn like ours.
"""

from project.settings import *  # noqa: F403
from project.settings import TEMPLATES

TEMPLATES = [{**TEMPLATES[0], "DIRS": []}]
