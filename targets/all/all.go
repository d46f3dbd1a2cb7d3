// Package all registers every target kind; import it for its side effect.
package all

import (
	_ "github.com/autoscalerd/autoscalerd/targets/compose"
	_ "github.com/autoscalerd/autoscalerd/targets/nomad"
	_ "github.com/autoscalerd/autoscalerd/targets/process"
	_ "github.com/autoscalerd/autoscalerd/targets/swarm"
)
