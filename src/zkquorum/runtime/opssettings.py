"""The ``admin.*`` and ``metricsProvider.*`` keys of zoo.cfg (``docs/spec/zk-server.md`` §5).

Apart from :mod:`zkquorum.runtime.http_admin` so that ``zkquorum run`` can read them, and
import the endpoints (about 30 ms and 1.2 MiB) only when zoo.cfg asks for one.  See
``examples/kubernetes/README.md`` for the keys and zkquorum's defaults.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from zkquorum.config.errors import ConfigError
from zkquorum.config.properties import load_properties

PROMETHEUS_PROVIDER: Final = "org.apache.zookeeper.metrics.prometheus.PrometheusMetricsProvider"
_OFF_PROVIDERS: Final = frozenset(
    {
        "org.apache.zookeeper.metrics.impl.DefaultMetricsProvider",
        "org.apache.zookeeper.metrics.impl.NullMetricsProvider",
    }
)


@dataclass(frozen=True, slots=True)
class OpsSettings:
    """The ``admin.*`` and ``metricsProvider.*`` keys of zoo.cfg, checked."""

    admin_enabled: bool = False
    admin_address: str = "0.0.0.0"
    admin_port: int = 8080
    command_url: str = "/commands"
    idle_timeout_ms: int = 30000
    metrics_enabled: bool = False
    metrics_host: str = "0.0.0.0"
    metrics_port: int = 7000

    @classmethod
    def from_zoo_cfg(cls, text: str, path: str | None = None) -> OpsSettings:
        """Read the keys from zoo.cfg's text (``java.util.Properties`` rules)."""
        props = load_properties(text, path)

        def value(key: str) -> str | None:
            e = props.get(key)
            return e.value.strip() if e is not None else None

        def fail(key: str, message: str) -> ConfigError:
            e = props.get(key)
            return ConfigError(message, path=path, line=e.line if e else None)

        def port(key: str, default: int) -> int:
            text = value(key)
            if text is None:
                return default
            if not text.isdigit() or not 0 <= int(text) <= 65535:
                raise fail(key, f"{key}={text}: not a port number (0-65535)")
            return int(text)

        def boolean(key: str) -> bool | None:
            text = value(key)
            if text is None:
                return None
            # Boolean.getBoolean / parseBoolean: "true" (any case) is true, the rest false.
            return text.lower() == "true"

        for key in ("admin.portUnification", "admin.forceHttps"):
            if boolean(key):
                raise fail(key, f"{key}=true: zkquorum's AdminServer speaks plain HTTP only")
        enable = boolean("admin.enableServer")
        admin_port_given = value("admin.serverPort") is not None
        url = value("admin.commandURL") or "/commands"
        if not url.startswith("/"):
            raise fail("admin.commandURL", f"admin.commandURL={url}: must start with '/'")
        idle = value("admin.idleTimeout") or "30000"
        if not idle.isdigit():
            raise fail("admin.idleTimeout", f"admin.idleTimeout={idle}: not a whole number")
        provider = value("metricsProvider.className")
        if (
            provider is not None
            and provider != PROMETHEUS_PROVIDER
            and provider not in _OFF_PROVIDERS
        ):
            raise fail(
                "metricsProvider.className",
                f"metricsProvider.className={provider}: zkquorum serves the Prometheus "
                f"provider ({PROMETHEUS_PROVIDER}) or none",
            )
        return cls(
            admin_enabled=enable if enable is not None else admin_port_given,
            admin_address=value("admin.serverAddress") or "0.0.0.0",
            admin_port=port("admin.serverPort", 8080),
            command_url=url.rstrip("/") or "/",
            idle_timeout_ms=int(idle),
            metrics_enabled=provider == PROMETHEUS_PROVIDER,
            metrics_host=value("metricsProvider.httpHost") or "0.0.0.0",
            metrics_port=port("metricsProvider.httpPort", 7000),
        )

    @property
    def enabled(self) -> bool:
        """Something is to be served (the AdminServer or ``/metrics``)."""
        return self.admin_enabled or self.metrics_enabled
