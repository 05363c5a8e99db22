"""
### Nector → Postgres → WebEngage nightly sync

Loads new Nector export files into the `nector` staging schema, rebuilds the `loyalty` profile and
segment flags as of midnight (Asia/Kolkata) that ends the previous day, queues new loyalty events and
changed user attributes in `sync.webengage_outbox`, sends them to WebEngage in bulk calls, and logs a
summary.

Connections: `loyalty_warehouse` (Postgres) and `webengage` (HTTP: login = license code, password =
REST API key, extra `data_center`). Settings: the JSON Variable `loyalty_sync_settings`, overridable
per run with the `settings` param. The params `full_resync`, `redrive_dead_letters`, `dry_run` and
`concurrency` change what the deliver stage does for one run. See README.md.
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import CronDataIntervalTimetable, Param, dag, task, task_group

# Airflow 3 turns a plain cron string into a zero-length interval; this timetable gives each run the
# 24 hours before 02:00 as its data interval.
NIGHTLY_AT_2AM_IST = CronDataIntervalTimetable("0 2 * * *", timezone="Asia/Kolkata")
NETWORK_RETRIES = {"retries": 3, "retry_delay": timedelta(minutes=2), "retry_exponential_backoff": True}


@dag(
    dag_id="nector_webengage_sync",
    schedule=NIGHTLY_AT_2AM_IST,
    start_date=pendulum.datetime(2026, 11, 1, tz="Asia/Kolkata"),
    catchup=False,
    max_active_runs=1,
    default_args={"retries": 0, "owner": "data"},
    params={
        "settings": Param(
            {},
            type="object",
            description="Overrides of loyalty_sync_settings for this run only, for example {\"max_event_age_days\": 30}.",
        ),
        "full_resync": Param(
            False, type="boolean",
            description="Send every user's attributes, changed or not. Events are never sent twice.",
        ),
        "redrive_dead_letters": Param(
            False, type="boolean",
            description="Queue the dead items (view sync.webengage_dead_letter) again after a fix, rebuilt from the "
                        "current warehouse rows.",
        ),
        "dry_run": Param(
            False, type="boolean",
            description="Deliver stage only: write the bulk calls it would make to a file in the dry_run_dir setting, "
                        "send nothing and change no delivery state.",
        ),
        "concurrency": Param(
            None, type=["null", "integer"], minimum=1, maximum=32,
            description="Bulk calls the deliver task makes at once; empty for the sender_threads setting.",
        ),
    },
    tags=["nector", "webengage", "loyalty"],
    doc_md=__doc__,
)
def nector_webengage_sync():
    @task_group
    def ingest():
        @task
        def migrate_warehouse() -> list[str]:
            from loyalty_sync import runtime, tasks

            with runtime.warehouse() as conn:
                return tasks.prepare_warehouse(conn)

        @task
        def load_exports() -> dict:
            from loyalty_sync import runtime, tasks

            run = runtime.RunContext.current()
            with runtime.warehouse() as conn:
                return tasks.ingest(conn, run.settings, run.run_id)

        migrate_warehouse() >> load_exports()

    @task_group
    def derive():
        @task
        def check_segments() -> list:
            from loyalty_sync import runtime, tasks

            return tasks.check_segments(runtime.RunContext.current().settings)

        @task
        def build_profiles() -> dict:
            from loyalty_sync import runtime, tasks

            run = runtime.RunContext.current()
            with runtime.warehouse() as conn:
                return tasks.derive(conn, run.settings, run.as_of)

        check_segments() >> build_profiles()

    @task_group
    def deliver():
        @task
        def queue_items() -> dict:
            from loyalty_sync import runtime, tasks

            run = runtime.RunContext.current()
            if run.delivery.dry_run:
                return {"dry_run": True, "note": "queued by send_to_webengage, inside the dry run"}
            with runtime.warehouse() as conn:
                return tasks.queue(conn, run.settings, run.as_of, run.run_id, full_resync=run.delivery.full_resync,
                                   redrive_dead_letters=run.delivery.redrive_dead_letters)

        @task(**NETWORK_RETRIES)
        def send_to_webengage() -> dict:
            from loyalty_sync import runtime, tasks

            run = runtime.RunContext.current()
            with runtime.warehouse() as conn:
                if run.delivery.dry_run:
                    return tasks.deliver_dry_run(conn, run.settings, run.as_of, run.run_id,
                                                 full_resync=run.delivery.full_resync,
                                                 redrive_dead_letters=run.delivery.redrive_dead_letters)
                return tasks.deliver(conn, run.settings, run.run_id, runtime.webengage_hook_factory(run.settings),
                                     concurrency=run.delivery.concurrency)

        queue_items() >> send_to_webengage()

    @task_group
    def report():
        @task
        def summarize_run() -> dict:
            from loyalty_sync import runtime, tasks

            run = runtime.RunContext.current()
            with runtime.warehouse() as conn:
                return tasks.summarize(conn, run.run_id, run.as_of)

        summarize_run()

    ingest() >> derive() >> deliver() >> report()


dag = nector_webengage_sync()

if __name__ == "__main__":
    dag.test()
