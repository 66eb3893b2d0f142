package server

import "github.com/cairnkv/cairn/internal/regmodel"

// The simulator's register model for porcupine is the chaos harness's
// (internal/regmodel).
type (
	chInput  = regmodel.Input
	chOutput = regmodel.Output
)

const (
	chOK            = regmodel.OK
	chCompareFailed = regmodel.CompareFailed
	chUnknown       = regmodel.Unknown
)

var chModel = regmodel.Model
