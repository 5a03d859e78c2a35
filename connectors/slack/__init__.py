"""docent's Slack app (slack-bolt): Socket Mode by default, HTTP Events API for several replicas."""

from connectors.slack.app import build_app, make_http_server, make_web_client, run_http, run_socket_mode
from connectors.slack.connector import SlackConnector

__all__ = ["SlackConnector", "build_app", "make_http_server", "make_web_client", "run_http", "run_socket_mode"]
