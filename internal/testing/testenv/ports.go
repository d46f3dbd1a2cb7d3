package testenv

import (
	"math/rand/v2"
	"net"
	"strconv"
	"testing"
)

// FreePortRange finds base such that base+1..base+n are free on 127.0.0.1, for workers
// that listen on a base port plus their replica number. It looks below the ephemeral
// range (32768 and up on Linux), where bind(0) and outgoing connections take ports: a
// port picked there can be taken by any connection of another test before the worker
// binds it.
func FreePortRange(t testing.TB, n int) int {
	t.Helper()
	for range 100 {
		base := 20000 + rand.IntN(12000)
		ok := true
		var held []net.Listener
		for i := 1; i <= n && ok; i++ {
			l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(base+i))
			if err != nil {
				ok = false
				break
			}
			held = append(held, l)
		}
		for _, l := range held {
			l.Close()
		}
		if ok {
			return base
		}
	}
	t.Fatalf("no %d consecutive free ports", n)
	return 0
}
