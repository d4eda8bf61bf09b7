-- GET the constant endpoint: the framework's ceiling on the same gunicorn config.
wrk.method = "GET"
wrk.path = "/const"
