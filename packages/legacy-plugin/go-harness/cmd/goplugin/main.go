// A Go plugin in the shape of a third-party docker-machine driver: its whole
// state is in its struct, which travels as JSON through GetConfigRaw and
// SetConfigRaw between plugin processes.
package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"legacyharness/mcnflag"
	"legacyharness/rpcdriver"
)

type Driver struct {
	IPAddress      string
	MachineName    string
	SSHUser        string
	SSHPort        int
	SSHKeyPath     string
	StorePath      string
	SwarmMaster    bool
	SwarmHost      string
	SwarmDiscovery string

	AccessToken string
	Region      string
	DiskGB      int
	Tags        []string
	Private     bool
	InstanceID  string
	State       int
}

func (d *Driver) DriverName() string { return "gotoy" }

// GetCreateFlags returns value flags and pointer flags, as real drivers do (Hetzner uses values).
func (d *Driver) GetCreateFlags() []mcnflag.Flag {
	return []mcnflag.Flag{
		mcnflag.StringFlag{Name: "gotoy-token", Usage: "gotoy API token", EnvVar: "GOTOY_TOKEN"},
		&mcnflag.StringFlag{Name: "gotoy-region", Usage: "gotoy region", EnvVar: "GOTOY_REGION", Value: "r1"},
		mcnflag.IntFlag{Name: "gotoy-disk-gb", Usage: "disk size in GB", Value: 20},
		&mcnflag.StringSliceFlag{Name: "gotoy-tag", Usage: "tags", Value: []string{"default-tag"}},
		mcnflag.BoolFlag{Name: "gotoy-private", Usage: "private networking"},
	}
}

func (d *Driver) SetConfigFromFlags(opts rpcdriver.DriverOptions) error {
	d.AccessToken = opts.String("gotoy-token")
	d.Region = opts.String("gotoy-region")
	d.DiskGB = opts.Int("gotoy-disk-gb")
	d.Tags = opts.StringSlice("gotoy-tag")
	d.Private = opts.Bool("gotoy-private")
	d.SwarmMaster = opts.Bool("swarm-master")
	if d.AccessToken == "" {
		return errors.New("gotoy driver requires the --gotoy-token option")
	}
	return nil
}

func (d *Driver) PreCreateCheck() error {
	if d.Region != "r1" && d.Region != "r2" {
		return fmt.Errorf("region %q is not available", d.Region)
	}
	return nil
}

func (d *Driver) Create() error {
	fmt.Printf("Creating gotoy instance in %s with %d GB\n", d.Region, d.DiskGB)
	fmt.Fprintf(os.Stderr, "debug: token has %d characters\n", len(d.AccessToken))
	d.InstanceID = "gotoy-" + d.MachineName
	d.IPAddress = "192.0.2.10"
	d.SSHUser = "gotoy"
	d.SSHPort = 22
	d.SSHKeyPath = filepath.Join(d.StorePath, "machines", d.MachineName, "id_rsa")
	d.State = 1
	return nil
}

func (d *Driver) need() error {
	if d.InstanceID == "" {
		return errors.New("gotoy instance not found")
	}
	return nil
}

func (d *Driver) set(state int) error {
	if err := d.need(); err != nil {
		return err
	}
	d.State = state
	return nil
}

func (d *Driver) Start() error   { return d.set(1) }
func (d *Driver) Stop() error    { return d.set(4) }
func (d *Driver) Restart() error { return d.set(1) }
func (d *Driver) Kill() error    { return d.set(4) }
func (d *Driver) Remove() error {
	d.InstanceID = ""
	d.State = 0
	return nil
}
func (d *Driver) GetState() (int, error) {
	if err := d.need(); err != nil {
		return 0, err
	}
	return d.State, nil
}
func (d *Driver) GetIP() (string, error)          { return d.IPAddress, d.need() }
func (d *Driver) GetSSHHostname() (string, error) { return d.IPAddress, d.need() }
func (d *Driver) GetSSHPort() (int, error)        { return d.SSHPort, nil }
func (d *Driver) GetSSHUsername() string          { return d.SSHUser }
func (d *Driver) GetSSHKeyPath() string           { return d.SSHKeyPath }
func (d *Driver) GetMachineName() string          { return d.MachineName }
func (d *Driver) GetURL() (string, error) {
	if err := d.need(); err != nil {
		return "", err
	}
	return fmt.Sprintf("tcp://%s:2376", d.IPAddress), nil
}

func main() {
	rpcdriver.Serve(&Driver{})
}
