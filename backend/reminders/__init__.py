"""The reminder domain: who is told what, when, and whether it still matters.

One module per kind of reminder (``doses`` with their escalation, ``refills``,
``appointments``, ``checkin_prompts``, ``urgent`` work items, ``snoozes``, ``messages``,
``morning_summary``, ``device_health``), with the rules they share beside them:
``timeline`` (a dose's durations), ``escalation`` (chains), ``audience`` (who around a
patient may hear), ``quiet_hours``, ``relevance`` (the dispatcher's re-checks, one table)
and the ``planner`` that writes them ahead. Rows reach the outbox through
``notifications.outbox``; nothing here imports Flask, the API or the services.
"""
