#!/bin/bash
# benches/live_capture.sh weir|nfpcapd RATE (needs root or CAP_NET_RAW; nfpcapd from apt-get install -y nfdump)
# RATE: capture lo while weir gen sends v9 at RATE flows/s for 8 s to 127.0.0.1:PORT (no listener)
T=$1; R=$2; D=$(mktemp -d); P=$((30000 + RANDOM % 10000))
W=${WEIR:-target/release/weir}
if [ $T = weir ]; then $W pcap -i lo -w $D -t 60 > $D.out 2>&1 & CP=$!
else nfpcapd -i lo -w $D -t 60 > $D.out 2>&1 & CP=$!; fi
sleep 1
S=$($W gen --send 127.0.0.1:$P --format v9 --rate ${R}/s --duration 8s 2>&1 | grep -o "in [0-9]* datagrams" | grep -o "[0-9]*")
sleep 1
read -a f < <(sed 's/.*) //' /proc/$CP/stat); TK=$(( ${f[11]} + ${f[12]} ))
kill -INT $CP; wait $CP 2>/dev/null; sleep 0.5
if [ $T = weir ]; then N=$($W query -R $D -q -N -o "fmt:%pkt" "dst port $P" | awk '{s+=$1} END {print s}')
else N=$(nfdump -R $D -q -N -o "fmt:%pkt" "dst port $P" 2>/dev/null | awk '{s+=$1} END {print s}'); fi
echo "$T rate=$R sent_datagrams=$S captured_packets=$N cpu_ticks=$TK (over ~10 s)"
rm -rf $D $D.out
