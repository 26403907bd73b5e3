# How quic_v2_aioquic.txt's packet was made (pip install aioquic; 1.7.2): a real
# QUIC v2 client Initial, sans-IO (no packet is sent anywhere). Each run makes a
# different packet (fresh connection ids and key shares).
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.connection import QuicConnection
from aioquic.quic.packet import QuicProtocolVersion
import aioquic
cfg = QuicConfiguration(is_client=True, alpn_protocols=["h3"], server_name="quic-v2.example.org",
                        original_version=QuicProtocolVersion.VERSION_2,
                        supported_versions=[QuicProtocolVersion.VERSION_2])
c = QuicConnection(configuration=cfg)
c.connect(("192.0.2.1", 443), now=0.0)
d = c.datagrams_to_send(now=0.0)
print(aioquic.__version__, len(d), [len(x[0]) for x in d])
print(d[0][0].hex())
