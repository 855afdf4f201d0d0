"""`serve` runs the flow on Prefect's own scheduler with typed, fixed parameters."""

from pathlib import Path

import pytest


@pytest.fixture(scope="module")
def deployment():
    from pipeline.flows import make_deployment

    return make_deployment("30 5 * * 1-5", documents=[Path("page.txt")], output_dir=Path("/data/out"),
                           snapshots_dir=Path("/data/snapshots"), timezone="Europe/Paris", online=True)


def test_deployment_carries_the_cron_schedule_and_timezone(deployment):
    [schedule] = deployment.schedules
    assert (schedule.schedule.cron, schedule.schedule.timezone) == ("30 5 * * 1-5", "Europe/Paris")


def test_deployment_parameters_are_the_flows_typed_parameters(deployment):
    assert deployment.parameters == {"documents": ["page.txt"], "output_dir": "/data/out",
                                     "snapshots_dir": "/data/snapshots", "online": True}

def test_flow_parameters_are_typed_for_the_server_to_validate():
    from prefect.utilities.callables import parameter_schema

    from pipeline.flows import trialrecon_flow

    schema = parameter_schema(trialrecon_flow).model_dump()["properties"]
    assert set(schema) == {"documents", "output_dir", "snapshots_dir", "online"}
    assert schema["online"]["type"] == "boolean"
    assert schema["output_dir"]["format"] == "path"
    assert schema["documents"]["anyOf"][0] == {"items": {"format": "path", "type": "string"}, "type": "array"}
