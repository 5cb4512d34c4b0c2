"""The function app: one Blueprint per trigger package, nothing else."""

import azure.functions as func

from functions.instance_writer import bp as instance_writer
from functions.oauth_callback import bp as oauth_callback
from functions.sync_timer import bp as sync_timer

app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)
app.register_functions(oauth_callback)
app.register_functions(sync_timer)
app.register_functions(instance_writer)
