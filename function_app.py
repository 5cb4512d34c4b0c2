"""The function app: telemetry (only when Application Insights is configured), then one
Blueprint per trigger package."""

import azure.functions as func

from core.app.bootstrap import configure_telemetry

# Before the trigger packages import the libraries the distro instruments (requests, the
# Azure SDK), as it asks; a no-op locally. Hence the imports below it (E402).
configure_telemetry()

from functions.calendar_api import bp as calendar_api  # noqa: E402
from functions.instance_writer import bp as instance_writer  # noqa: E402
from functions.notifications import bp as notifications  # noqa: E402
from functions.oauth_callback import bp as oauth_callback  # noqa: E402
from functions.sync_timer import bp as sync_timer  # noqa: E402

app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)
app.register_functions(oauth_callback)
app.register_functions(sync_timer)
app.register_functions(instance_writer)
app.register_functions(notifications)
app.register_functions(calendar_api)
