package regmodel

import (
	"fmt"
	"slices"
	"strconv"

	"github.com/anishathalye/porcupine"
)

// Input is an operation's input.
type Input struct {
	Op    string `json:"op"` // "read", "write", "cas"
	Key   string `json:"key"`
	Value string `json:"value,omitempty"` // write, cas: the new value
	Prev  string `json:"prev,omitempty"`  // cas: the value compared
}

// Outcome is how an operation ended.
type Outcome string

// The outcomes.
const (
	OK            Outcome = "ok"
	CompareFailed Outcome = "compare-failed" // cas answered 412 errorCode 101
	NotApplied    Outcome = "not-applied"    // certainly without effect
	Unknown       Outcome = "unknown"        // may take effect, at any time after its invocation
)

// Output is an operation's output.
type Output struct {
	Outcome Outcome `json:"outcome"`
	Value   string  `json:"value,omitempty"` // read: the value read
	Missing bool    `json:"missing,omitempty"`
	Detail  string  `json:"detail,omitempty"` // why not ok
}

// Meta is recorded with every operation, for the visualisation.
type Meta struct {
	Member string `json:"member"`
	Client int    `json:"client"`
}

// Model is the registers' sequential specification, partitioned by key.
var Model = porcupine.Model{
	Partition: func(history []porcupine.Operation) [][]porcupine.Operation {
		byKey := map[string][]porcupine.Operation{}
		var keys []string
		for _, op := range history {
			k := op.Input.(Input).Key
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
		st, in, out := state.(string), input.(Input), output.(Output)
		switch in.Op {
		case "read":
			if out.Missing {
				return st == "", st
			}
			return out.Value == st, st
		case "write":
			if out.Outcome == NotApplied {
				return true, st
			}
			return true, in.Value // ok, or unknown (linearized where it took effect)
		case "cas":
			switch out.Outcome {
			case OK:
				return st == in.Prev, in.Value
			case CompareFailed:
				if out.Missing {
					return st == "", st
				}
				return st != in.Prev, st
			case NotApplied:
				return true, st
			case Unknown:
				if st == in.Prev {
					return true, in.Value
				}
				return true, st
			}
		}
		return false, st
	},
	DescribeOperation: func(input, output any) string {
		in, out := input.(Input), output.(Output)
		var s string
		switch in.Op {
		case "read":
			v := strconv.Quote(out.Value)
			if out.Missing {
				v = "(absent)"
			}
			return fmt.Sprintf("read %s -> %s", in.Key, v)
		case "write":
			s = fmt.Sprintf("write %s %q", in.Key, in.Value)
		default:
			s = fmt.Sprintf("cas %s %q -> %q", in.Key, in.Prev, in.Value)
		}
		s += " " + string(out.Outcome)
		if out.Detail != "" {
			s += " (" + out.Detail + ")"
		}
		return s
	},
	DescribeState: func(state any) string {
		if state.(string) == "" {
			return "(absent)"
		}
		return strconv.Quote(state.(string))
	},
	DescribeOperationMetadata: func(info any) string {
		m, ok := info.(Meta)
		if !ok {
			return ""
		}
		return fmt.Sprintf("member %s, client %d", m.Member, m.Client)
	},
}
