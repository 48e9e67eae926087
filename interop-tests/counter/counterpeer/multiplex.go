package counterpeer

import (
	"fmt"
	"reflect"

	plugin "github.com/hashicorp/go-plugin"
)

// SetGRPCBrokerMultiplex turns on go-plugin's ClientConfig.GRPCBrokerMultiplex
// (go-plugin 1.6+). The same sources build against 1.0.1, which has no such
// field, so it is set by name; on 1.0.1 this returns an error.
func SetGRPCBrokerMultiplex(cfg *plugin.ClientConfig) error {
	f := reflect.ValueOf(cfg).Elem().FieldByName("GRPCBrokerMultiplex")
	if !f.IsValid() || f.Kind() != reflect.Bool {
		return fmt.Errorf("--multiplex: this go-plugin has no ClientConfig.GRPCBrokerMultiplex (it came in go-plugin 1.6)")
	}
	f.SetBool(true)
	return nil
}
