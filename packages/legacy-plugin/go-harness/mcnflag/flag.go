// Package mcnflag re-declares libmachine's create-flag types (docker/machine
// libmachine/mcnflag/flag.go) in a package of the same name, so gob sends and
// expects the same names: *mcnflag.StringFlag, *mcnflag.IntFlag, ...
package mcnflag

import "fmt"

type Flag interface {
	fmt.Stringer
	Default() interface{}
}

type StringFlag struct {
	Name   string
	Usage  string
	EnvVar string
	Value  string
}

func (f StringFlag) Default() interface{} { return f.Value }
func (f StringFlag) String() string       { return f.Name }

type StringSliceFlag struct {
	Name   string
	Usage  string
	EnvVar string
	Value  []string
}

func (f StringSliceFlag) Default() interface{} { return f.Value }
func (f StringSliceFlag) String() string       { return f.Name }

type IntFlag struct {
	Name   string
	Usage  string
	EnvVar string
	Value  int
}

func (f IntFlag) Default() interface{} { return f.Value }
func (f IntFlag) String() string       { return f.Name }

type BoolFlag struct {
	Name   string
	Usage  string
	EnvVar string
}

func (f BoolFlag) Default() interface{} { return nil }
func (f BoolFlag) String() string       { return f.Name }
