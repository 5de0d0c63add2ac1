"""The cluster files validate against Ray's own schemas (no cloud here to run `ray up` against)."""

import pytest
import yaml

from .conftest import repo_root


def test_ray_cluster_yaml_passes_ray_ups_validation():
    from ray.autoscaler._private.util import prepare_config, validate_config

    config = prepare_config(yaml.safe_load((repo_root() / "ray_cluster.yaml").read_text()))
    validate_config(config)  # the schema check `ray up` runs before it touches the cloud
    workers = {name: node for name, node in config["available_node_types"].items() if name != config["head_node_type"]}
    assert any(node["node_config"]["InstanceType"].startswith(("g", "p")) and node["max_workers"] > node["min_workers"] for node in workers.values())
    setup = "\n".join(config["setup_commands"])
    assert "pip install -e /opt/screenalytics" in setup and "onnxruntime-gpu" in setup
    assert config["file_mounts"]["/opt/screenalytics"] == "."


def test_serve_config_and_runtime_env_validate():
    from ray.runtime_env import RuntimeEnv
    from ray.serve.schema import ServeDeploySchema

    serve = ServeDeploySchema.model_validate(yaml.safe_load((repo_root() / "cluster_config" / "serve_config.yaml").read_text()))
    assert [app.import_path for app in serve.applications] == ["serve_app.app:app"]
    env = RuntimeEnv(**yaml.safe_load((repo_root() / "cluster_config" / "runtime_env.yaml").read_text()))
    assert env["working_dir"] == "."


def test_cluster_deployment_keeps_state_on_the_head_and_secrets_out_of_runtime_envs(tmp_path):
    """State: SQLite on the head, every writer pinned there. Data: s3://. Secrets: never in a runtime env.
    A proxy on 0.0.0.0 makes the app refuse to start without a token."""
    from ray.serve.schema import ServeDeploySchema

    from serve_app.app import REPLICA_OPTIONS
    from serve_app.jobs import HEAD_NODE_RESOURCE, job_actor_options, job_runtime_env
    from serve_app.settings import ApiSettings, SettingsError

    raw = yaml.safe_load((repo_root() / "cluster_config" / "serve_config.yaml").read_text())
    serve = ServeDeploySchema.model_validate(raw)
    app = serve.applications[0]
    env = app.runtime_env["env_vars"]
    assert raw["http_options"]["host"] == "0.0.0.0" and env["SCREENALYTICS_REQUIRE_TOKEN"] == "1"
    assert env["SCREENALYTICS_DATA_DIR"].startswith("s3://")
    assert not [k for k in env if any(s in k for s in ("SECRET", "PASSWORD")) or k in ("SCREENALYTICS_API_TOKEN", "AWS_ACCESS_KEY_ID")]
    assert raw["applications"][0]["deployments"][0]["ray_actor_options"]["resources"] == {HEAD_NODE_RESOURCE: 0.001}
    assert REPLICA_OPTIONS["resources"] == {HEAD_NODE_RESOURCE: 0.001} and env["MALLOC_ARENA_MAX"] == "2"
    assert job_actor_options("job:x")["resources"] == {HEAD_NODE_RESOURCE: 0.001}
    local = {**env, "SCREENALYTICS_DATA_DIR": str(tmp_path)}
    with pytest.raises(SettingsError, match="/etc/screenalytics/api_token"):
        ApiSettings.from_env(None, local)  # the token file is missing here
    with pytest.raises(SettingsError, match="no API token"):
        ApiSettings.from_env(None, {k: v for k, v in local.items() if k != "SCREENALYTICS_API_TOKEN_FILE"})
    passed = job_runtime_env({"AWS_SECRET_ACCESS_KEY": "x", "AWS_SESSION_TOKEN": "y", "AWS_ACCESS_KEY_ID": "z", "S3_ENDPOINT_URL": "http://s3"})
    assert passed == {"env_vars": {"S3_ENDPOINT_URL": "http://s3"}}


def test_job_actors_run_on_the_head_node(ray_cluster):
    import ray

    from serve_app.jobs import HEAD_NODE_RESOURCE

    assert ray.cluster_resources().get(HEAD_NODE_RESOURCE) == 1.0  # the resource job actors and replicas ask for


def test_batches_on_a_multi_node_cluster_need_an_s3_data_dir():
    from pipelines.batch import data_dir_problem

    assert data_dir_problem("data", 1) is None and data_dir_problem("s3://b/p", 3) is None
    assert "s3://" in data_dir_problem("/mnt/data", 2)


def test_the_laptop_serve_config_validates_and_stays_on_loopback():
    from ray.serve.schema import ServeDeploySchema

    raw = yaml.safe_load((repo_root() / "cluster_config" / "serve_local.yaml").read_text())
    ServeDeploySchema.model_validate(raw)
    assert raw["http_options"]["host"] == "127.0.0.1" and raw["applications"][0]["import_path"] == "serve_app.app:app"
