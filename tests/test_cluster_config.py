"""The cluster files validate against Ray's own schemas (no cloud here to run `ray up` against)."""

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
