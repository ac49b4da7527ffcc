"""Operations: tiered alerts, circuit breakers, duration forecasts and SLAs, OpenLineage events.

Each is a RunObserver (nbflow/engine/observe.py) that the Project hands the engine; settings come from nbflow.toml
([alerts], [breakers], [forecast], [openlineage], and `alert`/`sla` on tasks and schedules).
"""
