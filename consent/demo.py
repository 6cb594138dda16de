"""The demo's consent: topics, mixed consent for the demo customers, a preference link."""

import io

from django.core.management import call_command

from customers.demo.steps import DemoRun


def load(run: DemoRun) -> list[str]:
    output = io.StringIO()
    call_command("consent_demo_seed", stdout=output)
    return [line for line in output.getvalue().splitlines() if line.strip()]
