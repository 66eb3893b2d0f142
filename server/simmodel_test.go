package server

import (
	"fmt"
	"slices"
	"strconv"

	"github.com/anishathalye/porcupine"
)

// The simulator's register model for porcupine: the same rules as the
// chaos harness's (e2e/chaoscheck_test.go). A key's state is its value (""
// while absent; no operation writes ""). An operation whose outcome is
// unknown returns at the end of time, so it may take effect at any point
// after its call, or not at all.

type chInput struct {
	Op    string // "read", "write", "cas"
	Key   string
	Value string // write, cas: the new value
	Prev  string // cas: the value compared
}

type chOutcome string

const (
	chOK            chOutcome = "ok"
	chCompareFailed chOutcome = "compare-failed"
	chUnknown       chOutcome = "unknown"
)

type chOutput struct {
	Outcome chOutcome
	Value   string // read: the value read
	Missing bool
	Detail  string // why not ok
}

var chModel = porcupine.Model{
	Partition: func(history []porcupine.Operation) [][]porcupine.Operation {
		byKey := map[string][]porcupine.Operation{}
		var keys []string
		for _, op := range history {
			k := op.Input.(chInput).Key
			if _, ok := byKey[k]; !ok {
				keys = append(keys, k)
			}
			byKey[k] = append(byKey[k], op)
		}
		slices.Sort(keys)
		var out [][]porcupine.Operation
		for _, k := range keys {
			out = append(out, byKey[k])
		}
		return out
	},
	Init: func() any { return "" },
	Step: func(state, input, output any) (bool, any) {
		st, in, out := state.(string), input.(chInput), output.(chOutput)
		switch in.Op {
		case "read":
			if out.Missing {
				return st == "", st
			}
			return out.Value == st, st
		case "write":
			return true, in.Value // ok, or unknown (linearized where it took effect)
		case "cas":
			switch out.Outcome {
			case chOK:
				return st == in.Prev, in.Value
			case chCompareFailed:
				if out.Missing {
					return st == "", st
				}
				return st != in.Prev, st
			case chUnknown:
				if st == in.Prev {
					return true, in.Value
				}
				return true, st
			}
		}
		return false, st
	},
	DescribeOperation: func(input, output any) string {
		in, out := input.(chInput), output.(chOutput)
		switch in.Op {
		case "read":
			v := strconv.Quote(out.Value)
			if out.Missing {
				v = "(absent)"
			}
			return fmt.Sprintf("read %s -> %s", in.Key, v)
		case "write":
			return fmt.Sprintf("write %s %q %s", in.Key, in.Value, out.Outcome)
		}
		return fmt.Sprintf("cas %s %q -> %q %s", in.Key, in.Prev, in.Value, out.Outcome)
	},
}
