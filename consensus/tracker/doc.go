// Package tracker keeps the leader's view of each follower: how much of
// the log it holds (Match), what to send next (Next), whether it is being
// probed, fed a stream of appends, or sent a snapshot, and a bounded window
// of appends in flight. It also holds the current membership and the votes
// of an election. Everything is visited in ascending ID order so that the
// core's behaviour never depends on map iteration.
package tracker
