package hass

// LongestTopic is the longest topic (or topic filter) the bridge publishes
// or subscribes to with these topics and locks, so that the configuration
// can refuse a base topic or prefix that would make one exceed MQTT's
// 65,535 bytes. With no lock ids it assumes one of 32 characters (the
// length every lock id has).
func (t Topics) LongestTopic(lockIDs []string) string {
	if len(lockIDs) == 0 {
		lockIDs = []string{"00000000000000000000000000000000"}
	}
	d := Discovery{Topics: t}
	all := []string{
		t.Availability(), t.Usage(), t.Clock(), t.HAStatus(), t.DeviceConfigFilter(),
		t.ReaderTag(), t.ReaderEvent(), t.ReaderStatus(), t.ReaderFeedback(),
		t.DeviceConfig(d.BridgeDeviceID()), t.DeviceConfig(d.ReaderDeviceID()),
	}
	all = append(all, t.CommandFilters()...)
	all = append(all, t.ReaderCommandTopics()...)
	all = append(all, t.ReaderEnrollNameState(), t.ReaderCardState())
	for _, id := range lockIDs {
		all = append(all,
			t.LockState(id), t.LockStatus(id), t.LockCommand(id), t.LockToggle(id),
			t.LockRefresh(id), t.LockResult(id), t.DeviceConfig(LockDeviceID(id)))
	}
	longest := ""
	for _, s := range all {
		if len(s) > len(longest) {
			longest = s
		}
	}
	return longest
}
