// Package progress shows how a long copy goes (`cairn snapshot save` and
// `restore`) on one line of a terminal, rewritten in place at most four
// times a second: the step, the bytes done (of how many, when known), the
// keys once known, and the rate. Where the output is not a terminal (a
// script, a pipe, a log file) a Meter writes nothing at all, so scripts
// see exactly what they saw before.
//
// A Meter is driven by the operation: Reader begins a step over the
// bytes read through it (with their number, 0 if unknown), Step one that
// counts none (a check), Keys gives the key count once known, and Done prints the last line and ends
// it; End, deferred, ends a line left open by a failure so that the error
// starts on a line of its own. Format is the line itself, a pure function
// of State, tested apart from the writing.
//
// IsTerminal asks the kernel (ioctl TCGETS on Linux; elsewhere the answer
// is no) rather than bringing in a module for it.
package progress
