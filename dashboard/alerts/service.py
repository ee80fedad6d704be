"""Alerts in one dashboard process: seed the rules, build the channels, run the dispatcher."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta

from dashboard.alerts.channels import Channel, EmailChannel, MQTTChannel, WebhookChannel
from dashboard.alerts.delivery import Dispatcher, RetryPolicy
from dashboard.alerts.engine import AlertEngine
from dashboard.alerts.store import seed_rules
from dashboard.config import DashboardConfig
from dashboard.store import Store

log = logging.getLogger(__name__)


def build_channels(config: DashboardConfig) -> list[Channel]:
    """The configured channels; MQTT only when the dashboard has a broker to talk to."""
    a = config.alerts
    channels: list[Channel] = []
    if a.webhook is not None:
        channels.append(WebhookChannel(a.webhook))
    if a.email is not None:
        channels.append(EmailChannel(a.email))
    if a.mqtt and config.mqtt.enabled:
        channels.append(MQTTChannel(config.mqtt))
    return channels


@dataclass
class AlertService:
    engine: AlertEngine
    dispatcher: Dispatcher

    def stop(self) -> None:
        self.dispatcher.stop()


def start_alerts(config: DashboardConfig, store: Store) -> AlertService:
    a = config.alerts
    with store.engine.begin() as conn:
        if seed_rules(conn, a.rules):
            log.info("alert rules seeded: %s", ", ".join(r.id for r in a.rules))
    channels = build_channels(config)
    policy = RetryPolicy(a.retry.first_s, a.retry.max_s, timedelta(hours=a.retry.give_up_h))
    dispatcher = Dispatcher(store.engine, channels, policy)
    engine = AlertEngine(
        store.engine,
        dispatcher.channel_names,
        max_lift_age=timedelta(minutes=a.max_lift_age_min),
        on_fired=dispatcher.wake,
    )
    dispatcher.start()
    log.info("alerts on: channels %s", ", ".join(dispatcher.channel_names) or "none")
    return AlertService(engine, dispatcher)
