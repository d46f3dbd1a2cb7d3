// Package engine runs autoscalerd's policies against real sources and targets: one loop
// (runner) per policy reads the queries and the target's count, asks policy.Decide, carries
// out the proposed action and commits it to the policy's state only once the target has
// done it, then saves the state (Store) when a restart must not lose it.
//
// Build turns a policy's configuration into its target and sources; the engine, validate
// (Resolve) and the example tests all use it. Apply swaps configurations without holding
// the engine's lock across I/O. Metrics and the status views (Status, ChartPoint) are what
// the daemon's HTTP side reads.
package engine
