package docgraph.localneo4j;

import java.nio.file.Path;
import java.util.Map;
import java.util.concurrent.CountDownLatch;

import org.neo4j.configuration.GraphDatabaseSettings;
import org.neo4j.configuration.connectors.BoltConnector;
import org.neo4j.configuration.helpers.SocketAddress;
import org.neo4j.dbms.api.DatabaseManagementService;
import org.neo4j.dbms.api.DatabaseManagementServiceBuilder;
import org.neo4j.io.ByteUnit;

/**
 * Starts an embedded Neo4j Community DBMS for local tests.
 *
 * <p>Configuration comes from system properties so services.sh stays the only
 * place that knows ports and paths:
 * <ul>
 *   <li>docgraph.neo4j.home     - DBMS home (data/, logs/ live below it)</li>
 *   <li>docgraph.neo4j.port     - Bolt port</li>
 *   <li>docgraph.neo4j.host     - listen address, default 127.0.0.1; the container
 *       image (deploy/docker/services.Dockerfile) sets 0.0.0.0 inside its own network</li>
 *   <li>docgraph.neo4j.password - password for the built-in user "neo4j"</li>
 * </ul>
 *
 * <p>Auth is enabled. The password is (re)applied on every start through the
 * system database, so changing DOCGRAPH_TEST_NEO4J_PASSWORD and restarting is
 * enough; embedded code runs with full privileges, so no initial login is needed.
 */
public final class NeoServer {
    private NeoServer() {}

    public static void main(String[] args) throws Exception {
        Path home = Path.of(required("docgraph.neo4j.home"));
        int port = Integer.parseInt(required("docgraph.neo4j.port"));
        String password = required("docgraph.neo4j.password");
        if (password.length() < 8) {
            // Neo4j 5 refuses shorter passwords (dbms.security.auth_minimum_password_length).
            throw new IllegalArgumentException("docgraph.neo4j.password must be at least 8 characters");
        }

        String host = System.getProperty("docgraph.neo4j.host", "127.0.0.1");
        SocketAddress listen = new SocketAddress(host, port);
        SocketAddress bolt = new SocketAddress("127.0.0.1", port);  // advertised
        DatabaseManagementService dbms = new DatabaseManagementServiceBuilder(home)
                // Anything that listens at all listens on loopback only (unless host says otherwise).
                .setConfig(GraphDatabaseSettings.default_listen_address, new SocketAddress(host))
                .setConfig(GraphDatabaseSettings.default_advertised_address, new SocketAddress("127.0.0.1"))
                .setConfig(BoltConnector.enabled, true)
                .setConfig(BoltConnector.listen_address, listen)
                .setConfig(BoltConnector.advertised_address, bolt)
                .setConfig(BoltConnector.encryption_level, BoltConnector.EncryptionLevel.DISABLED)
                .setConfig(GraphDatabaseSettings.auth_enabled, true)
                // Never phone home: the only traffic allowed here is loopback, and
                // Community would otherwise send anonymous usage data to Neo4j.
                .setConfig(GraphDatabaseSettings.udc_enabled, false)
                // Small footprint: a 2-core CI box also runs the test suite, and
                // preallocated 256 MiB transaction logs per database waste disk.
                .setConfig(GraphDatabaseSettings.pagecache_memory, ByteUnit.mebiBytes(128))
                .setConfig(GraphDatabaseSettings.preallocate_logical_logs, false)
                .setConfig(GraphDatabaseSettings.logical_log_rotation_threshold, ByteUnit.mebiBytes(16))
                .build();

        CountDownLatch stopped = new CountDownLatch(1);
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            System.out.println("docgraph-neo4j: shutting down");
            dbms.shutdown();
            stopped.countDown();
        }, "docgraph-neo4j-shutdown"));

        setPassword(dbms, password);
        System.out.println("docgraph-neo4j: READY bolt://" + bolt);
        System.out.flush();
        stopped.await();
    }

    private static void setPassword(DatabaseManagementService dbms, String password) {
        try {
            dbms.database(GraphDatabaseSettings.SYSTEM_DATABASE_NAME).executeTransactionally(
                    "ALTER USER neo4j SET PLAINTEXT PASSWORD $pw CHANGE NOT REQUIRED", Map.of("pw", password));
            System.out.println("docgraph-neo4j: password for user neo4j set");
        } catch (RuntimeException e) {
            // On restarts the password is usually unchanged, and Neo4j refuses to
            // "change" a password to itself: that is the state we want anyway.
            String msg = String.valueOf(e.getMessage());
            if (msg.contains("cannot be the same")) {
                System.out.println("docgraph-neo4j: password for user neo4j already set");
            } else {
                throw e;
            }
        }
    }

    private static String required(String key) {
        String v = System.getProperty(key);
        if (v == null || v.isEmpty()) {
            throw new IllegalArgumentException("missing -D" + key);
        }
        return v;
    }
}
