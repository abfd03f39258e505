"""Gunicorn settings for `gunicorn wsgi:app -c gunicorn.conf.py`; each can be overridden from the environment."""

import multiprocessing
import os

bind = os.environ.get("GUNICORN_BIND", f"0.0.0.0:{os.environ.get('PORT', '8000')}")
workers = int(os.environ.get("GUNICORN_WORKERS", min(multiprocessing.cpu_count() * 2 + 1, 8)))
threads = int(os.environ.get("GUNICORN_THREADS", "4"))
worker_class = "gthread"
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "30"))
graceful_timeout = 20
keepalive = 5
# Restart workers now and then so that a slow leak cannot grow without bound, but rarely: a restart
# rebuilds the app (about a second of CPU), and a bulk run sends one callback per mailbox.
max_requests = int(os.environ.get("GUNICORN_MAX_REQUESTS", "50000"))
max_requests_jitter = max_requests // 10
accesslog = os.environ.get("GUNICORN_ACCESSLOG", "-")
errorlog = "-"
# Query strings can carry one-time secrets (an OAuth code): log the path only.
access_log_format = '%(h)s "%(m)s %(U)s %(H)s" %(s)s %(b)s %(M)sms'
# Paths can carry them too (reset, invitation, setup and callback links): this logger masks them in
# every field, query values included (access_log.py).
logger_class = "access_log.AccessLogger"
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")
