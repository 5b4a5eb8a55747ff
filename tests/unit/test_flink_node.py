"""runners/flink_node.py: the Flink configuration each node role writes."""

from runners import flink_node


def test_flink_config_restarts_lost_stages_and_drops_dead_taskmanagers():
  """The JobManager's restart settings as runners/flink_node.py writes them:
  region failover, a constant exponential-delay backoff (failures within
  one backoff merged), the slot wait, and heartbeats that drop a dead
  TaskManager well within the restarts."""
  import yaml  # pylint: disable=import-outside-toplevel  (PyYAML: a Beam dependency)
  config = yaml.safe_load(flink_node.flink_config(
      tmp_dir="/t", jobmanager_address="10.0.0.1", address="10.0.0.2",
      bind_host="0.0.0.0", slots=2, taskmanager_memory="2g",
      taskmanager_off_heap="256m", jobmanager_memory="1g", rest_port=8081,
      restart_attempts=7, restart_delay_s=3, slot_timeout_s=30))
  assert config["jobmanager"]["execution"]["failover-strategy"] == "region"
  strategy = config["restart-strategy"]
  assert strategy["type"] == "exponential-delay"
  backoff = strategy["exponential-delay"]
  assert backoff["initial-backoff"] == backoff["max-backoff"] == "3 s"
  assert backoff["attempts-before-reset-backoff"] == 7
  assert backoff["backoff-multiplier"] > 1  # Flink refuses 1
  assert config["slot"]["request"]["timeout"] == 30000
  dropped_after_ms = max(2 * config["heartbeat"]["interval"],
                         config["heartbeat"]["timeout"])
  assert 7 * 3000 >= dropped_after_ms
  defaults = yaml.safe_load(flink_node.flink_config(
      tmp_dir="/t", jobmanager_address="a", address="a", bind_host="a",
      slots=1, taskmanager_memory="1g", taskmanager_off_heap="1m",
      jobmanager_memory="1g", rest_port=1))
  assert (flink_node.RESTART_ATTEMPTS * flink_node.RESTART_DELAY_S * 1000
          >= 2 * max(2 * defaults["heartbeat"]["interval"],
                     defaults["heartbeat"]["timeout"]))
