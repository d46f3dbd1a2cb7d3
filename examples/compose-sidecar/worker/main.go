// Command worker stands in for your worker in the compose-sidecar example when it runs
// from locally built images (build-local.sh): it logs its start, idles, and on SIGTERM
// logs that it is finishing and exits 0, as the busybox worker of docker-compose.yml does.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	host, _ := os.Hostname()
	fmt.Printf("worker %s started\n", host)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	<-ctx.Done()
	fmt.Printf("worker %s got SIGTERM, finishing\n", host)
}
