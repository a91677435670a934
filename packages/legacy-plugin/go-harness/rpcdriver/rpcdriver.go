// Package rpcdriver re-declares what libmachine's plugin RPC uses (docker/machine
// libmachine/drivers/rpc and drivers/plugin), from the standard library only:
// the gob registrations, RPCFlags, the server a plugin runs and the client a
// host uses.
package rpcdriver

import (
	"bufio"
	"encoding/gob"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/rpc"
	"os"
	"os/exec"
	"strings"
	"time"

	"legacyharness/mcnflag"
)

func init() {
	gob.Register(new(RPCFlags))
	gob.Register(new(mcnflag.IntFlag))
	gob.Register(new(mcnflag.StringFlag))
	gob.Register(new(mcnflag.StringSliceFlag))
	gob.Register(new(mcnflag.BoolFlag))
}

// DriverOptions is libmachine's drivers.DriverOptions.
type DriverOptions interface {
	String(key string) string
	StringSlice(key string) []string
	Int(key string) int
	Bool(key string) bool
}

// RPCFlags is what a host sends to SetConfigFromFlags.
type RPCFlags struct {
	Values map[string]interface{}
}

func (r RPCFlags) Get(key string) interface{} { return r.Values[key] }

func (r RPCFlags) String(key string) string {
	d, ok := r.Values[key]
	if !ok {
		return ""
	}
	return d.(string)
}

func (r RPCFlags) StringSlice(key string) []string {
	d, ok := r.Values[key]
	if !ok {
		return nil
	}
	return d.([]string)
}

func (r RPCFlags) Int(key string) int {
	d, ok := r.Values[key]
	if !ok {
		return 0
	}
	return d.(int)
}

func (r RPCFlags) Bool(key string) bool {
	d, ok := r.Values[key]
	if !ok {
		return false
	}
	return d.(bool)
}

// Driver is the subset of libmachine's drivers.Driver the RPC serves.
type Driver interface {
	Create() error
	DriverName() string
	GetCreateFlags() []mcnflag.Flag
	GetIP() (string, error)
	GetMachineName() string
	GetSSHHostname() (string, error)
	GetSSHKeyPath() string
	GetSSHPort() (int, error)
	GetSSHUsername() string
	GetURL() (string, error)
	GetState() (int, error)
	Kill() error
	PreCreateCheck() error
	Remove() error
	Restart() error
	SetConfigFromFlags(opts DriverOptions) error
	Start() error
	Stop() error
}

// RPCServerDriver mirrors libmachine/drivers/rpc/server_driver.go.
type RPCServerDriver struct {
	ActualDriver Driver
	CloseCh      chan bool
	HeartbeatCh  chan bool
}

func (r *RPCServerDriver) GetVersion(_ *struct{}, reply *int) error { *reply = 1; return nil }
func (r *RPCServerDriver) Close(_, _ *struct{}) error               { r.CloseCh <- true; return nil }
func (r *RPCServerDriver) Heartbeat(_, _ *struct{}) error           { r.HeartbeatCh <- true; return nil }
func (r *RPCServerDriver) GetCreateFlags(_ *struct{}, reply *[]mcnflag.Flag) error {
	*reply = r.ActualDriver.GetCreateFlags()
	return nil
}
func (r *RPCServerDriver) SetConfigRaw(data []byte, _ *struct{}) error {
	return json.Unmarshal(data, &r.ActualDriver)
}
func (r *RPCServerDriver) GetConfigRaw(_ *struct{}, reply *[]byte) error {
	data, err := json.Marshal(r.ActualDriver)
	*reply = data
	return err
}
func (r *RPCServerDriver) SetConfigFromFlags(flags *DriverOptions, _ *struct{}) error {
	return r.ActualDriver.SetConfigFromFlags(*flags)
}
func (r *RPCServerDriver) Create(_, _ *struct{}) error { return r.ActualDriver.Create() }
func (r *RPCServerDriver) PreCreateCheck(_, _ *struct{}) error {
	return r.ActualDriver.PreCreateCheck()
}
func (r *RPCServerDriver) Remove(_, _ *struct{}) error  { return r.ActualDriver.Remove() }
func (r *RPCServerDriver) Start(_, _ *struct{}) error   { return r.ActualDriver.Start() }
func (r *RPCServerDriver) Stop(_, _ *struct{}) error    { return r.ActualDriver.Stop() }
func (r *RPCServerDriver) Restart(_, _ *struct{}) error { return r.ActualDriver.Restart() }
func (r *RPCServerDriver) Kill(_, _ *struct{}) error    { return r.ActualDriver.Kill() }
func (r *RPCServerDriver) DriverName(_ *struct{}, reply *string) error {
	*reply = r.ActualDriver.DriverName()
	return nil
}
func (r *RPCServerDriver) GetMachineName(_ *struct{}, reply *string) error {
	*reply = r.ActualDriver.GetMachineName()
	return nil
}
func (r *RPCServerDriver) GetSSHKeyPath(_ *struct{}, reply *string) error {
	*reply = r.ActualDriver.GetSSHKeyPath()
	return nil
}
func (r *RPCServerDriver) GetSSHUsername(_ *struct{}, reply *string) error {
	*reply = r.ActualDriver.GetSSHUsername()
	return nil
}
func (r *RPCServerDriver) GetIP(_ *struct{}, reply *string) (err error) {
	*reply, err = r.ActualDriver.GetIP()
	return
}
func (r *RPCServerDriver) GetURL(_ *struct{}, reply *string) (err error) {
	*reply, err = r.ActualDriver.GetURL()
	return
}
func (r *RPCServerDriver) GetSSHHostname(_ *struct{}, reply *string) (err error) {
	*reply, err = r.ActualDriver.GetSSHHostname()
	return
}
func (r *RPCServerDriver) GetSSHPort(_ *struct{}, reply *int) (err error) {
	*reply, err = r.ActualDriver.GetSSHPort()
	return
}
func (r *RPCServerDriver) GetState(_ *struct{}, reply *int) (err error) {
	*reply, err = r.ActualDriver.GetState()
	return
}

// Serve is libmachine's plugin.RegisterDriver.
func Serve(d Driver) {
	if os.Getenv("MACHINE_PLUGIN_TOKEN") != "42" {
		fmt.Fprintf(os.Stderr, "This is a Docker Machine plugin binary.\nPlugin binaries are not intended to be invoked directly.\nPlease use this plugin through the main 'docker-machine' binary.\n(API version: 1)\n")
		os.Exit(1)
	}
	srv := &RPCServerDriver{ActualDriver: d, CloseCh: make(chan bool), HeartbeatCh: make(chan bool)}
	rpc.RegisterName("RpcServerDriver", srv)
	// GOPLUGIN_V0_ONLY=1: only the V0 spelling, as plugins built before docker-machine 0.5.5.
	if os.Getenv("GOPLUGIN_V0_ONLY") != "1" {
		rpc.RegisterName("RPCServerDriver", srv)
	}
	rpc.HandleHTTP()
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintf(os.Stderr, "Error loading RPC server: %s\n", err)
		os.Exit(1)
	}
	defer listener.Close()
	fmt.Println(listener.Addr())
	go http.Serve(listener, nil)
	for {
		select {
		case <-srv.CloseCh:
			os.Exit(0)
		case <-srv.HeartbeatCh:
			continue
		case <-time.After(10 * time.Second):
			os.Exit(1)
		}
	}
}

// Plugin is a launched plugin binary, as libmachine's localbinary runs it.
type Plugin struct {
	Cmd     *exec.Cmd
	Client  *rpc.Client
	Service string
	Lines   chan string
	done    chan struct{}
	Exited  chan error
}

// Launch starts the binary with the token, reads its address and dials it.
// GOHOST_PLUGIN_ARGS (JSON list) gives it arguments, as rancher-machine passes its own argv.
func Launch(path, name string) (*Plugin, error) {
	var args []string
	json.Unmarshal([]byte(os.Getenv("GOHOST_PLUGIN_ARGS")), &args)
	cmd := exec.Command(path, args...)
	cmd.Env = append(os.Environ(), "MACHINE_PLUGIN_TOKEN=42", "MACHINE_PLUGIN_DRIVER_NAME="+name)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &Plugin{Cmd: cmd, Lines: make(chan string, 1000), done: make(chan struct{}), Exited: make(chan error, 1)}
	out := bufio.NewScanner(stdout)
	addrCh := make(chan string, 1)
	go func() {
		first := true
		for out.Scan() {
			if first {
				addrCh <- strings.TrimSpace(out.Text())
				first = false
				continue
			}
			p.Lines <- "stdout: " + out.Text()
		}
		if first {
			close(addrCh)
		}
	}()
	go func() {
		errs := bufio.NewScanner(stderr)
		for errs.Scan() {
			p.Lines <- "stderr: " + errs.Text()
		}
	}()
	var addr string
	select {
	case a, ok := <-addrCh:
		if !ok {
			cmd.Process.Kill()
			cmd.Wait()
			return nil, errors.New("plugin exited before printing its address")
		}
		addr = a
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		cmd.Wait()
		return nil, errors.New("Failed to dial the plugin server in 30s")
	}
	go func() { p.Exited <- cmd.Wait() }()
	client, err := rpc.DialHTTP("tcp", addr)
	if err != nil {
		cmd.Process.Kill()
		return nil, err
	}
	p.Client = client
	var version int
	p.Service = "RPCServerDriver"
	if err := client.Call("RPCServerDriver.GetVersion", struct{}{}, &version); err != nil {
		p.Service = "RpcServerDriver"
		if err := client.Call("RpcServerDriver.GetVersion", struct{}{}, &version); err != nil {
			return nil, err
		}
	}
	if version != 1 {
		return nil, fmt.Errorf("Driver binary uses an incompatible API version (%d)", version)
	}
	return p, nil
}

// Heartbeats sends a Heartbeat every interval until Stop.
func (p *Plugin) Heartbeats(interval time.Duration) {
	go func() {
		for {
			select {
			case <-p.done:
				return
			case <-time.After(interval):
				p.Client.Call(p.Service+".Heartbeat", struct{}{}, nil)
			}
		}
	}()
}

// Call calls Service.method.
func (p *Plugin) Call(method string, args interface{}, reply interface{}) error {
	return p.Client.Call(p.Service+"."+method, args, reply)
}

// Close sends Close, ignores its error (the plugin exits inside it) and waits for the exit.
func (p *Plugin) Close() error {
	close(p.done)
	p.Call("Close", struct{}{}, nil)
	select {
	case err := <-p.Exited:
		return err
	case <-time.After(15 * time.Second):
		p.Cmd.Process.Kill()
		return errors.New("plugin did not exit after Close")
	}
}
