# What autoscalerd's workload identity may do (attach it to the job, see README.md):
# read and scale jobs in the namespace, and hold the leader lock.
namespace "default" {
  capabilities = ["read-job", "scale-job"]

  variables {
    path "autoscalerd/leader" {
      capabilities = ["read", "write"]
    }
  }
}
