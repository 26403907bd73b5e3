import subprocess, sys
out = subprocess.run(['tshark','-r',sys.argv[1],'-Y','tcp.len>0','-T','fields','-e','frame.number','-e','ip.src','-e','ipv6.src','-e','ip.dst','-e','ipv6.dst','-e','tcp.payload'],capture_output=True,text=True).stdout
streams = {}
for line in out.splitlines():
    f = line.split('\t')
    no, src, dst, pl = f[0], f[1] or f[2], f[3] or f[4], bytes.fromhex(f[5].replace(':',''))
    key=(src,dst)
    buf = streams.get(key,b'') + pl
    while len(buf) >= 19:
        l = int.from_bytes(buf[16:18],'big')
        if len(buf) < l: break
        m, buf = buf[:l], buf[l:]
        print(no, src, '->', dst, 'type', m[18], 'len', l, m.hex())
    streams[key]=buf
