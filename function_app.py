"""The function app: telemetry (only when Application Insights is configured), then one
Blueprint per trigger package."""

import azure.functions as func

from core.app.bootstrap import configure_telemetry

configure_telemetry()  # before any function runs, as the distro asks; a no-op locally

from functions.instance_writer import bp as instance_writer
from functions.oauth_callback import bp as oauth_callback
from functions.sync_timer import bp as sync_timer

app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)
app.register_functions(oauth_callback)
app.register_functions(sync_timer)
app.register_functions(instance_writer)
