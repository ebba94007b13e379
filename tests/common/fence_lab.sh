#!/bin/sh
# A Pacemaker fence agent for the lab: "power" is a node's network
# namespace, and turning it off kills every process in it (corosync,
# Pacemaker, coroha, fake-confd), as lab.rs's crash does. Pacemaker's
# fencer calls it with key=value lines on stdin (action, port or plug,
# and the device's parameters); `-o ACTION` works too, for a person.
action=reboot
target=
lab_tag=
lab_dir=
if [ "$1" = "-o" ]; then
    action=$2
else
    while IFS='=' read -r key value; do
        case $key in
            action|option) action=$value ;;
            port|plug|nodename) [ -z "$target" ] && target=$value ;;
            lab_tag) lab_tag=$value ;;
            lab_dir) lab_dir=$value ;;
        esac
    done
fi
case $action in
    metadata)
        cat <<'XML'
<?xml version="1.0" ?>
<resource-agent name="fence_lab" shortdesc="Fence a coroha lab node by killing its namespace's processes">
  <longdesc>Kills every process of the lab node's network namespace.</longdesc>
  <parameters>
    <parameter name="port" unique="0" required="0">
      <content type="string"/>
      <shortdesc lang="en">The node to fence</shortdesc>
    </parameter>
    <parameter name="plug" unique="0" required="0">
      <content type="string"/>
      <shortdesc lang="en">The node to fence</shortdesc>
    </parameter>
    <parameter name="lab_tag" unique="0" required="1">
      <content type="string"/>
      <shortdesc lang="en">The lab's namespace tag</shortdesc>
    </parameter>
    <parameter name="lab_dir" unique="0" required="1">
      <content type="string"/>
      <shortdesc lang="en">The lab's directory</shortdesc>
    </parameter>
  </parameters>
  <actions>
    <action name="on"/>
    <action name="off"/>
    <action name="reboot"/>
    <action name="status"/>
    <action name="monitor"/>
    <action name="list"/>
    <action name="metadata"/>
  </actions>
</resource-agent>
XML
        ;;
    off|reboot)
        [ -n "$target" ] && [ -n "$lab_tag" ] || exit 1
        ns="crh${lab_tag}${target}"
        pids=$(ip netns pids "$ns")
        [ -n "$pids" ] && kill -KILL $pids
        # A node that loses power loses the addresses its resources added.
        ip -n "$ns" addr flush dev eth0 secondary
        echo "$(date +%s%3N) dead" >> "$lab_dir/$target/history"
        echo "$(date +%s%3N) $action" >> "$lab_dir/$target/fenced"
        ;;
    on|status|monitor|list) ;;
    *) exit 1 ;;
esac
exit 0
