// A Go plugin that drives the DigitalOcean v2 API with net/http, the way
// third-party docker-machine drivers drive their clouds; the tests point it at
// cloud-sim. Like docker-machine's own DigitalOcean driver it makes an RSA key
// pair in the machine folder (StorePath/machines/NAME/id_rsa), uploads the
// public key to the account, creates the droplet with it and deletes the key
// on Remove. Its state (the droplet and key ids) travels in its JSON config.
package main

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"time"

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
	APIURL      string
	Region      string
	Size        string
	Image       string
	DropletID   int
	SSHKeyID    int
}

func (d *Driver) DriverName() string { return "godo" }

func (d *Driver) GetCreateFlags() []mcnflag.Flag {
	return []mcnflag.Flag{
		mcnflag.StringFlag{Name: "godo-access-token", Usage: "DigitalOcean access token", EnvVar: "GODO_ACCESS_TOKEN"},
		mcnflag.StringFlag{Name: "godo-api-url", Usage: "DigitalOcean API URL", EnvVar: "GODO_API_URL", Value: "https://api.digitalocean.com"},
		mcnflag.StringFlag{Name: "godo-region", Usage: "region", Value: "nyc3"},
		mcnflag.StringFlag{Name: "godo-size", Usage: "size", Value: "s-1vcpu-1gb"},
		mcnflag.StringFlag{Name: "godo-image", Usage: "image", Value: "ubuntu-24-04-x64"},
		mcnflag.IntFlag{Name: "godo-ssh-port", Usage: "SSH port", Value: 22},
	}
}

func (d *Driver) SetConfigFromFlags(opts rpcdriver.DriverOptions) error {
	d.AccessToken = opts.String("godo-access-token")
	d.APIURL = opts.String("godo-api-url")
	d.Region = opts.String("godo-region")
	d.Size = opts.String("godo-size")
	d.Image = opts.String("godo-image")
	d.SSHPort = opts.Int("godo-ssh-port")
	if d.AccessToken == "" {
		return errors.New("godo driver requires the --godo-access-token option")
	}
	return nil
}

type droplet struct {
	ID       int    `json:"id"`
	Status   string `json:"status"`
	Networks struct {
		V4 []struct {
			IPAddress string `json:"ip_address"`
			Type      string `json:"type"`
		} `json:"v4"`
	} `json:"networks"`
}

func (d *Driver) api(method, path string, body interface{}, out interface{}) (int, error) {
	var reader *bytes.Reader
	if body != nil {
		data, _ := json.Marshal(body)
		reader = bytes.NewReader(data)
	} else {
		reader = bytes.NewReader(nil)
	}
	req, err := http.NewRequest(method, d.APIURL+path, reader)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", "Bearer "+d.AccessToken)
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer res.Body.Close()
	if res.StatusCode >= 300 {
		var problem struct {
			Message string `json:"message"`
		}
		json.NewDecoder(res.Body).Decode(&problem)
		return res.StatusCode, fmt.Errorf("DigitalOcean API %s %s: %d %s", method, path, res.StatusCode, problem.Message)
	}
	if out != nil {
		return res.StatusCode, json.NewDecoder(res.Body).Decode(out)
	}
	return res.StatusCode, nil
}

func (d *Driver) get() (*droplet, error) {
	if d.DropletID == 0 {
		return nil, errors.New("droplet not found")
	}
	var out struct {
		Droplet droplet `json:"droplet"`
	}
	status, err := d.api("GET", "/v2/droplets/"+strconv.Itoa(d.DropletID), nil, &out)
	if status == 404 {
		return nil, errors.New("droplet not found")
	}
	if err != nil {
		return nil, err
	}
	return &out.Droplet, nil
}

func (d *Driver) waitFor(status string) error { return d.waitForWithin(status, 30*time.Second) }

func (d *Driver) waitForWithin(status string, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		current, err := d.get()
		if err != nil {
			return err
		}
		if current.Status == status {
			for _, network := range current.Networks.V4 {
				if network.Type == "public" {
					d.IPAddress = network.IPAddress
				}
			}
			// Like docker-machine's DigitalOcean driver: an active droplet's public IP can come
			// later, so keep reading until it has one.
			if status != "active" || d.IPAddress != "" {
				return nil
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("droplet %d did not become %s in %s", d.DropletID, status, limit)
}

func (d *Driver) PreCreateCheck() error {
	_, err := d.api("GET", "/v2/account", nil, nil)
	return err
}

// sshString is one string of the SSH wire format (RFC 4251 section 5): a
// big-endian uint32 length, then the bytes.
func sshString(data []byte) []byte {
	out := make([]byte, 4, 4+len(data))
	binary.BigEndian.PutUint32(out, uint32(len(data)))
	return append(out, data...)
}

// sshMpint is a positive mpint of the SSH wire format: big-endian magnitude,
// with a zero byte in front when the top bit is set (else it would read as
// negative).
func sshMpint(n *big.Int) []byte {
	magnitude := n.Bytes()
	if len(magnitude) > 0 && magnitude[0]&0x80 != 0 {
		magnitude = append([]byte{0}, magnitude...)
	}
	return sshString(magnitude)
}

// authorizedKey is the authorized_keys line of an RSA public key,
// "ssh-rsa BASE64 COMMENT", BASE64 being the key blob of RFC 4253 section
// 6.6: string "ssh-rsa", mpint e, mpint n (what golang.org/x/crypto/ssh's
// MarshalAuthorizedKey writes, by hand: this harness uses the standard
// library only).
func authorizedKey(key *rsa.PublicKey, comment string) string {
	blob := sshString([]byte("ssh-rsa"))
	blob = append(blob, sshMpint(big.NewInt(int64(key.E)))...)
	blob = append(blob, sshMpint(key.N)...)
	return "ssh-rsa " + base64.StdEncoding.EncodeToString(blob) + " " + comment
}

// createSSHKey is libmachine's ssh.GenerateSSHKey: a 2048-bit RSA key written
// as PEM PKCS#1 to path (0600) and its public half to path.pub. It returns the
// authorized_keys line.
func createSSHKey(path, comment string) (string, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0700); err != nil {
		return "", err
	}
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return "", err
	}
	private := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})
	if err := os.WriteFile(path, private, 0600); err != nil {
		return "", err
	}
	line := authorizedKey(&key.PublicKey, comment)
	if err := os.WriteFile(path+".pub", []byte(line+"\n"), 0644); err != nil {
		return "", err
	}
	return line, nil
}

func (d *Driver) Create() error {
	d.SSHUser = "root"
	d.SSHKeyPath = filepath.Join(d.StorePath, "machines", d.MachineName, "id_rsa")
	fmt.Printf("Creating SSH key...\n")
	publicKey, err := createSSHKey(d.SSHKeyPath, d.MachineName)
	if err != nil {
		return fmt.Errorf("cannot write the SSH key %s: %v", d.SSHKeyPath, err)
	}
	var key struct {
		SSHKey struct {
			ID int `json:"id"`
		} `json:"ssh_key"`
	}
	if _, err := d.api("POST", "/v2/account/keys", map[string]string{"name": d.MachineName, "public_key": publicKey}, &key); err != nil {
		return err
	}
	d.SSHKeyID = key.SSHKey.ID
	fmt.Printf("Creating droplet %s in %s\n", d.MachineName, d.Region)
	var out struct {
		Droplet droplet `json:"droplet"`
	}
	body := map[string]interface{}{"name": d.MachineName, "region": d.Region, "size": d.Size, "image": d.Image, "ssh_keys": []int{d.SSHKeyID}, "tags": []string{"godo"}}
	if _, err := d.api("POST", "/v2/droplets", body, &out); err != nil {
		return err
	}
	d.DropletID = out.Droplet.ID
	fmt.Fprintf(os.Stderr, "droplet %d created with SSH key %d, waiting for it to be active\n", d.DropletID, d.SSHKeyID)
	return d.waitFor("active")
}

type action struct {
	ID     int    `json:"id"`
	Status string `json:"status"`
}

// action posts a droplet action and waits until DigitalOcean reports it
// completed, then until the droplet has the status it leads to (a reboot
// passes through off and new, so the droplet's status alone is not enough).
func (d *Driver) action(kind, until string) error {
	if _, err := d.get(); err != nil {
		return err
	}
	var posted struct {
		Action action `json:"action"`
	}
	if _, err := d.api("POST", "/v2/droplets/"+strconv.Itoa(d.DropletID)+"/actions", map[string]string{"type": kind}, &posted); err != nil {
		return err
	}
	deadline := time.Now().Add(30 * time.Second)
	for posted.Action.Status != "completed" {
		if posted.Action.Status == "errored" {
			return fmt.Errorf("droplet action %s failed", kind)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("droplet action %s did not complete in 30s", kind)
		}
		time.Sleep(20 * time.Millisecond)
		if _, err := d.api("GET", "/v2/actions/"+strconv.Itoa(posted.Action.ID), nil, &posted); err != nil {
			return err
		}
	}
	if until == "" {
		return nil
	}
	return d.waitFor(until)
}

func (d *Driver) Start() error { return d.action("power_on", "active") }

// Stop asks for a clean shutdown; DigitalOcean may complete that action while the droplet stays
// active (soon after boot), so after a while it powers the droplet off instead.
func (d *Driver) Stop() error {
	if err := d.action("shutdown", ""); err != nil {
		return err
	}
	if d.waitForWithin("off", 5*time.Second) == nil {
		return nil
	}
	return d.action("power_off", "off")
}
func (d *Driver) Kill() error    { return d.action("power_off", "off") }
func (d *Driver) Restart() error { return d.action("reboot", "active") }

// Remove deletes the account key, then the droplet, as docker-machine's
// DigitalOcean driver does; either one already gone (404) is not an error.
func (d *Driver) Remove() error {
	if d.SSHKeyID != 0 {
		status, err := d.api("DELETE", "/v2/account/keys/"+strconv.Itoa(d.SSHKeyID), nil, nil)
		if err != nil && status != 404 {
			return err
		}
		d.SSHKeyID = 0
	}
	if d.DropletID != 0 {
		status, err := d.api("DELETE", "/v2/droplets/"+strconv.Itoa(d.DropletID), nil, nil)
		if err != nil && status != 404 {
			return err
		}
		d.DropletID = 0
	}
	return nil
}

func (d *Driver) GetState() (int, error) {
	current, err := d.get()
	if err != nil {
		return 0, err
	}
	switch current.Status {
	case "new":
		return 6, nil
	case "active":
		return 1, nil
	case "off":
		return 4, nil
	}
	return 0, nil
}

func (d *Driver) GetIP() (string, error) {
	if d.IPAddress == "" {
		return "", errors.New("IP address is not set")
	}
	return d.IPAddress, nil
}
func (d *Driver) GetSSHHostname() (string, error) { return d.GetIP() }
func (d *Driver) GetSSHPort() (int, error)        { return d.SSHPort, nil }
func (d *Driver) GetSSHUsername() string          { return d.SSHUser }
func (d *Driver) GetSSHKeyPath() string           { return d.SSHKeyPath }
func (d *Driver) GetMachineName() string          { return d.MachineName }
func (d *Driver) GetURL() (string, error) {
	ip, err := d.GetIP()
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("tcp://%s:2376", ip), nil
}

func main() {
	rpcdriver.Serve(&Driver{})
}
