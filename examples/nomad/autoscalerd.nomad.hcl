# autoscalerd on every client node, electing one leader through a Nomad Variables lock.
#
#   nomad acl policy apply -namespace default -job autoscalerd autoscalerd acl-policy.hcl
#   nomad var put nomad/jobs/autoscalerd api_token="$(openssl rand -hex 24)"
#   nomad job run autoscalerd.nomad.hcl        # from this directory (file() below)

variable "image" {
  type        = string
  default     = "autoscalerd:latest"
  description = "the autoscalerd image (docker build -t autoscalerd . at the repository root)"
}

job "autoscalerd" {
  type = "system"

  group "autoscalerd" {
    network {
      port "http" {
        to = 9090
      }
    }

    service {
      name     = "autoscalerd"
      port     = "http"
      provider = "nomad"

      check {
        type     = "http"
        path     = "/healthz"
        interval = "10s"
        timeout  = "2s"
      }
    }

    task "autoscalerd" {
      driver = "docker"

      config {
        image = var.image
        args  = ["run", "-c", "/local/autoscalerd.yaml"]
        ports = ["http"]
      }

      # NOMAD_TOKEN: the task's workload identity, which the ACL policy in
      # acl-policy.hcl is attached to. The Task API socket below accepts it.
      identity {
        env = true
      }

      env {
        NOMAD_ADDR = "unix://${NOMAD_SECRETS_DIR}/api.sock"
      }

      template {
        data        = file("autoscalerd.yaml")
        destination = "local/autoscalerd.yaml"
        # Plain text: the file has no {{ }}, and ${...} is autoscalerd's own syntax.
        change_mode   = "signal"
        change_signal = "SIGHUP"
      }

      # Secrets and addresses the config refers to as ${...}.
      template {
        data        = <<-EOT
          {{ with nomadVar "nomad/jobs/autoscalerd" }}AUTOSCALERD_API_TOKEN={{ .api_token }}{{ end }}
          {{ range nomadService "prometheus" }}PROMETHEUS_ADDR=http://{{ .Address }}:{{ .Port }}{{ end }}
        EOT
        destination = "secrets/autoscalerd.env"
        env         = true
        change_mode = "restart"
      }

      # The Docker socket is not needed here: this daemon scales Nomad jobs.
      resources {
        cpu    = 100
        memory = 64
      }

      kill_timeout = "20s"
    }
  }
}
