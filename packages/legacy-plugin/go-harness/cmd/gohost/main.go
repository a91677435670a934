// A Go host that drives a docker-machine plugin binary the way docker-machine
// does (localbinary launch, RPCClientDriver calls, one plugin process per
// command, the driver config kept between commands), printing one JSON line
// per step.
//
//	gohost PLUGIN NAME STORE COMMAND...
//
// COMMAND is create, stop, start, restart, kill, state, idle (12 s with
// heartbeats, then state), rm, noheartbeat (no heartbeats: the plugin must
// exit by itself). GOHOST_FLAGS is a JSON object of create flag values.
package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"legacyharness/mcnflag"
	"legacyharness/rpcdriver"
)

var out = json.NewEncoder(os.Stdout)

func emit(session, step string, value interface{}, err error) {
	line := map[string]interface{}{"session": session, "step": step}
	if value != nil {
		line["value"] = value
	}
	if err != nil {
		line["error"] = err.Error()
	}
	out.Encode(line)
}

func drain(session string, p *rpcdriver.Plugin) {
	for {
		select {
		case line := <-p.Lines:
			emit(session, "line", line, nil)
		default:
			return
		}
	}
}

func closePlugin(session string, p *rpcdriver.Plugin) {
	err := p.Close()
	time.Sleep(100 * time.Millisecond)
	drain(session, p)
	code := -1
	if err == nil {
		code = 0
	} else if exit, ok := err.(*exec.ExitError); ok {
		code = exit.ExitCode()
	}
	emit(session, "exit", code, nil)
}

func str(session string, p *rpcdriver.Plugin, method string) {
	var reply string
	err := p.Call(method, struct{}{}, &reply)
	emit(session, method, reply, err)
}

func integer(session string, p *rpcdriver.Plugin, method string) {
	var reply int
	err := p.Call(method, struct{}{}, &reply)
	if err != nil {
		emit(session, method, nil, err)
		return
	}
	emit(session, method, reply, nil)
}

func void(session string, p *rpcdriver.Plugin, method string) {
	err := p.Call(method, struct{}{}, nil)
	emit(session, method, "ok", err)
}

// driverOpts builds RPCFlags as docker-machine's getDriverOpts does: every
// flag, given values first, then defaults (a nil bool default is false,
// string slices only when set), plus global create flags.
func driverOpts(flags []mcnflag.Flag, given map[string]interface{}) rpcdriver.DriverOptions {
	values := map[string]interface{}{"swarm-master": false, "swarm-host": "", "engine-label": []string{"from-host"}}
	for _, f := range flags {
		v, ok := given[f.String()]
		switch flag := f.(type) {
		case *mcnflag.StringFlag:
			if ok {
				values[flag.Name] = v.(string)
			} else {
				values[flag.Name] = flag.Value
			}
		case *mcnflag.IntFlag:
			if ok {
				values[flag.Name] = int(v.(float64))
			} else {
				values[flag.Name] = flag.Value
			}
		case *mcnflag.BoolFlag:
			if ok {
				values[flag.Name] = v.(bool)
			} else {
				values[flag.Name] = false
			}
		case *mcnflag.StringSliceFlag:
			if ok {
				list := []string{}
				for _, item := range v.([]interface{}) {
					list = append(list, item.(string))
				}
				values[flag.Name] = list
			}
		}
	}
	return &rpcdriver.RPCFlags{Values: values}
}

func main() {
	if len(os.Args) < 5 {
		fmt.Fprintln(os.Stderr, "usage: gohost PLUGIN NAME STORE COMMAND...")
		os.Exit(2)
	}
	plugin, name, store := os.Args[1], os.Args[2], os.Args[3]
	saved := filepath.Join(store, "driver-config.json")
	given := map[string]interface{}{}
	if raw := os.Getenv("GOHOST_FLAGS"); raw != "" {
		json.Unmarshal([]byte(raw), &given)
	}
	for _, command := range os.Args[4:] {
		p, err := rpcdriver.Launch(plugin, name)
		if err != nil {
			emit(command, "launch", nil, err)
			os.Exit(1)
		}
		emit(command, "version", p.Service, nil)
		if command == "noheartbeat" {
			select {
			case err := <-p.Exited:
				code := 0
				if exit, ok := err.(*exec.ExitError); ok {
					code = exit.ExitCode()
				}
				emit(command, "exit", code, nil)
			case <-time.After(30 * time.Second):
				p.Cmd.Process.Kill()
				emit(command, "exit", nil, fmt.Errorf("the plugin did not exit without heartbeats"))
			}
			continue
		}
		p.Heartbeats(5 * time.Second)
		if command == "create" {
			base, _ := json.Marshal(map[string]string{"MachineName": "gohost-m1", "StorePath": store})
			emit(command, "SetConfigRaw", "ok", p.Call("SetConfigRaw", base, nil))
			str(command, p, "GetMachineName")
			var flags []mcnflag.Flag
			err := p.Call("GetCreateFlags", struct{}{}, &flags)
			described := []map[string]interface{}{}
			for _, f := range flags {
				described = append(described, map[string]interface{}{"type": fmt.Sprintf("%T", f), "name": f.String(), "default": f.Default(), "flag": f})
			}
			emit(command, "GetCreateFlags", described, err)
			opts := driverOpts(flags, given)
			emit(command, "SetConfigFromFlags", "ok", p.Call("SetConfigFromFlags", &opts, nil))
			void(command, p, "PreCreateCheck")
			void(command, p, "Create")
		} else {
			config, _ := os.ReadFile(saved)
			emit(command, "SetConfigRaw", "ok", p.Call("SetConfigRaw", config, nil))
		}
		switch command {
		case "create", "state":
			str(command, p, "DriverName")
			integer(command, p, "GetState")
			str(command, p, "GetIP")
			str(command, p, "GetURL")
			str(command, p, "GetSSHHostname")
			integer(command, p, "GetSSHPort")
			str(command, p, "GetSSHUsername")
			str(command, p, "GetSSHKeyPath")
			str(command, p, "GetIPv6")
		case "stop":
			void(command, p, "Stop")
		case "start":
			void(command, p, "Start")
		case "restart":
			void(command, p, "Restart")
		case "kill":
			void(command, p, "Kill")
		case "rm":
			void(command, p, "Remove")
		case "idle":
			time.Sleep(12 * time.Second)
		}
		integer(command, p, "GetState")
		var config []byte
		err = p.Call("GetConfigRaw", struct{}{}, &config)
		if err == nil {
			os.WriteFile(saved, config, 0o600)
			var parsed interface{}
			json.Unmarshal(config, &parsed)
			emit(command, "GetConfigRaw", parsed, nil)
		} else {
			emit(command, "GetConfigRaw", nil, err)
		}
		closePlugin(command, p)
	}
}
