// Package all registers every query kind; import it for its side effect.
package all

import (
	_ "github.com/autoscalerd/autoscalerd/sources/docker_stats"
	_ "github.com/autoscalerd/autoscalerd/sources/exec"
	_ "github.com/autoscalerd/autoscalerd/sources/file"
	_ "github.com/autoscalerd/autoscalerd/sources/hatchet"
	_ "github.com/autoscalerd/autoscalerd/sources/http"
	_ "github.com/autoscalerd/autoscalerd/sources/nats"
	_ "github.com/autoscalerd/autoscalerd/sources/postgres"
	_ "github.com/autoscalerd/autoscalerd/sources/prometheus"
	_ "github.com/autoscalerd/autoscalerd/sources/rabbitmq"
	_ "github.com/autoscalerd/autoscalerd/sources/redis"
	_ "github.com/autoscalerd/autoscalerd/sources/temporal"
)
