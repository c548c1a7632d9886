package config

import (
	"fmt"
	"strings"
)

// DefaultSharedTopic is the topic prefix of a shared access list: one for
// every bridge of a building, apart from each bridge's own base topic.
const DefaultSharedTopic = "sesame2mqtt-access"

// Access configures the access list (ACCESS_SHARED, ACCESS_SHARED_TOPIC).
// The list itself lives in STATE_DIR; dates and hours are read in the
// process's time zone (TZ).
type Access struct {
	// Shared: the list is shared with the other bridges on the broker,
	// as retained documents under SharedTopic.
	Shared      bool
	SharedTopic string
}

func parseAccess(r raw) (Access, []error) {
	var errs []error
	a := Access{SharedTopic: r.AccessSharedTopic}
	switch {
	case isTrue(r.AccessShared):
		a.Shared = true
	case isFalse(r.AccessShared):
	default:
		errs = append(errs, fmt.Errorf("ACCESS_SHARED: must be true or false, got %s", quote(r.AccessShared)))
	}
	if err := checkTopic("ACCESS_SHARED_TOPIC", a.SharedTopic); err != nil {
		errs = append(errs, err)
	} else if a.SharedTopic == r.BaseTopic || strings.HasPrefix(a.SharedTopic, r.BaseTopic+"/") || a.SharedTopic == r.DiscoveryPrefix || strings.HasPrefix(a.SharedTopic, r.DiscoveryPrefix+"/") {
		errs = append(errs, fmt.Errorf("ACCESS_SHARED_TOPIC: %s must be outside MQTT_BASE_TOPIC and MQTT_DISCOVERY_PREFIX (it is shared by every bridge)", quote(a.SharedTopic)))
	}
	return a, errs
}

func accessWarnings(r raw) []string {
	if r.NFCDevice == "" && isTrue(r.AccessShared) {
		return []string{"ACCESS_SHARED is set but NFC_DEVICE is not: without a card reader this bridge has no access list to share"}
	}
	return nil
}
