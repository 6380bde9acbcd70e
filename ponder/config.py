"""The Hydra config tree (``configs/``, packaged into the wheel as ``ponder/configs``) and
composing it with command-line style overrides, with errors a user can act on."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ponder.errors import BadRequestError, missing_values


def config_dir() -> Path:
    """The packaged config tree, or the repository's when running from a checkout."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "configs", here.parent / "configs"):
        if (candidate / "config.yaml").exists():
            return candidate
    raise FileNotFoundError(f"ponder's configs/ folder is missing next to {here}")


def compose(overrides: list[str] | tuple[str, ...] = (), config_name: str = "config") -> dict[str, Any]:
    """The config after ``overrides`` (e.g. ``strategy.n=16``), as plain containers."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    from ponder.graph.defaults import store_class_defaults

    store_class_defaults()
    try:
        with initialize_config_dir(config_dir=str(config_dir()), version_base=None):
            config = hydra_compose(config_name=config_name, overrides=list(overrides))
    except (HydraException, OmegaConfBaseException) as exc:
        raise BadRequestError(f"bad override: {_summary(exc)}") from None
    return settled(config)


def settled(config: Any) -> dict[str, Any]:
    """A composed config as plain containers, refused when a value it requires (``???``,
    OmegaConf's MISSING) was not given: otherwise the mark itself would travel on as a value
    (a model named '???')."""
    from omegaconf import OmegaConf

    unset = OmegaConf.missing_keys(config)
    if unset:
        raise missing_values(list(unset))
    return OmegaConf.to_container(config, resolve=True)  # type: ignore[return-value]


_NOISE = ("full_key:", "object_type", "reference_type", "To append", "Config search path")


def _summary(exc: Exception) -> str:
    """Hydra's multi-line message, minus its internals, on one line."""
    text = str(exc).split("Config search path")[0]
    if exc.__cause__ is not None:
        text += "\n" + str(exc.__cause__)
    lines = [line.strip() for line in text.splitlines()]
    kept = [line for line in lines if line and not line.startswith(_NOISE)]
    return " ".join(kept) or type(exc).__name__
