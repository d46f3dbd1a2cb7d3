# The service autoscalerd scales: group "api" of job "web".
#
#   nomad job run web.nomad.hcl

job "web" {
  type = "service"

  group "api" {
    count = 1

    # Bounds Nomad itself enforces on every scale request. autoscalerd reads no policy
    # from here (that would be Nomad Autoscaler's); keep the policy's min/max inside.
    scaling {
      enabled = true
      min     = 1
      max     = 10
    }

    # While a deployment runs, Nomad refuses to scale; autoscalerd waits and retries on
    # its next tick without starting a cooldown.
    update {
      max_parallel     = 2
      min_healthy_time = "10s"
      healthy_deadline = "2m"
    }

    network {
      port "http" {
        to = 8080
      }
    }

    service {
      name     = "web"
      port     = "http"
      provider = "nomad"

      check {
        type     = "http"
        path     = "/health"
        interval = "10s"
        timeout  = "2s"
      }
    }

    task "server" {
      driver = "docker"

      config {
        image = "traefik/whoami:v1.10"
        args  = ["--port", "8080"]
        ports = ["http"]
      }

      resources {
        cpu    = 100
        memory = 64
      }
    }
  }
}
