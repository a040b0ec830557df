################################################################################
#
# custos
#
################################################################################

# Keep in step with Cargo.toml's version (scripts/check-packaging checks it).
CUSTOS_VERSION = 0.1.0
# Default: build the custos checkout this BR2_EXTERNAL tree lives in
# (board/buildroot/../..). To build from git instead, use for example:
#   CUSTOS_SITE = https://example.invalid/custos.git   (placeholder URL)
#   CUSTOS_SITE_METHOD = git
#   CUSTOS_VERSION = <tag or full commit id>
# and add the hash of the tarball Buildroot generates (vendored crates
# included) to custos.hash: see the comment there.
CUSTOS_SITE = $(BR2_EXTERNAL_CUSTOS_PATH)/../..
CUSTOS_SITE_METHOD = local
CUSTOS_LICENSE = MIT or Apache-2.0
CUSTOS_LICENSE_FILES = LICENSE-MIT LICENSE-APACHE
# The board's binary leaves out `custos import-monit` (cargo feature import-monit, on by
# default for workstation builds; +60 KiB on armv7).
CUSTOS_CARGO_BUILD_OPTS = --no-default-features
# Do not copy the developer's build output into the Buildroot build dir.
CUSTOS_OVERRIDE_SRCDIR_RSYNC_EXCLUSIONS = --exclude /target

# Buildroot's cargo infrastructure sets the release profile from BR2_OPTIMIZE_*
# and BR2_ENABLE_LTO, with 16 codegen units; custos's size budget needs the
# profile of its Cargo.toml (panic and strip are not overridden and come from
# there). scripts/check-packaging checks these against Cargo.toml.
CUSTOS_CARGO_ENV = \
	CARGO_PROFILE_RELEASE_OPT_LEVEL=z \
	CARGO_PROFILE_RELEASE_LTO=true \
	CARGO_PROFILE_RELEASE_CODEGEN_UNITS=1

# The project's .cargo/config.toml is the developer cross setup (linker
# names, -C link-self-contained=no and -L to a libunwind dir made by
# scripts/setup for armv7-unknown-linux-musleabihf). Buildroot supplies its
# own toolchain through the environment, so drop that file. A git or tarball
# download replaces it with the vendoring config already.
define CUSTOS_DROP_DEV_CARGO_CONFIG
	if [ ! -d $(@D)/VENDOR ]; then \
		rm -f $(@D)/.cargo/config.toml $(@D)/.cargo/config; \
	fi
endef

# Buildroot vendors crates (cargo vendor into VENDOR/, source replacement in
# .cargo/config.toml) in the download step, which local and OVERRIDE_SRCDIR
# sources skip. Do the same here when VENDOR/ is missing; this needs access
# to crates.io (or a warm $(DL_DIR)/br-cargo-home) at build time.
define CUSTOS_CARGO_VENDOR
	if [ ! -d $(@D)/VENDOR ]; then \
		cd $(@D) && mkdir -p .cargo && \
		{ $(TARGET_MAKE_ENV) $(PKG_CARGO_ENV) \
			cargo vendor --manifest-path Cargo.toml --locked VENDOR \
			> .cargo/config.toml.tmp && \
			mv .cargo/config.toml.tmp .cargo/config.toml || \
		{ rm -rf VENDOR .cargo/config.toml.tmp; exit 1; }; }; \
	fi
endef

CUSTOS_PRE_CONFIGURE_HOOKS += CUSTOS_DROP_DEV_CARGO_CONFIG CUSTOS_CARGO_VENDOR

# The cargo-package default install runs `cargo install` into /usr/bin;
# custos belongs in /usr/sbin.
define CUSTOS_INSTALL_TARGET_CMDS
	$(INSTALL) -D -m 0755 \
		$(@D)/target/$(RUSTC_TARGET_NAME)/$(if $(BR2_ENABLE_DEBUG),debug,release)/custos \
		$(TARGET_DIR)/usr/sbin/custos
endef

# /etc/custos.toml: the supervisor settings, then the watchdog and the
# example service when chosen. A rootfs overlay's own file replaces it.
ifeq ($(BR2_PACKAGE_CUSTOS_DEFAULT_CONFIG),y)
CUSTOS_CONFIG_PARTS = $(CUSTOS_PKGDIR)/custos.toml \
	$(if $(BR2_PACKAGE_CUSTOS_WATCHDOG),$(CUSTOS_PKGDIR)/custos-watchdog.toml) \
	$(if $(BR2_PACKAGE_CUSTOS_EXAMPLE_SERVICE),$(CUSTOS_PKGDIR)/custos-example.toml)
define CUSTOS_INSTALL_DEFAULT_CONFIG
	mkdir -p $(TARGET_DIR)/etc
	cat $(CUSTOS_CONFIG_PARTS) > $(TARGET_DIR)/etc/custos.toml
	chmod 0644 $(TARGET_DIR)/etc/custos.toml
endef
CUSTOS_POST_INSTALL_TARGET_HOOKS += CUSTOS_INSTALL_DEFAULT_CONFIG
endif

ifeq ($(BR2_PACKAGE_CUSTOS_EXAMPLE_SERVICE),y)
# The example serves its page with BusyBox httpd, which Buildroot's default
# BusyBox configuration leaves out: say so instead of installing a service
# that can never start.
CUSTOS_DEPENDENCIES += busybox
define CUSTOS_CHECK_BUSYBOX_HTTPD
	if ! grep -q '^CONFIG_HTTPD=y' $(BUSYBOX_DIR)/.config; then \
		echo "custos: the example service needs BusyBox httpd: add CONFIG_HTTPD=y to a BusyBox config fragment (BR2_PACKAGE_BUSYBOX_CONFIG_FRAGMENT_FILES) or disable BR2_PACKAGE_CUSTOS_EXAMPLE_SERVICE" >&2; \
		exit 1; \
	fi
endef
CUSTOS_PRE_INSTALL_TARGET_HOOKS += CUSTOS_CHECK_BUSYBOX_HTTPD

define CUSTOS_INSTALL_EXAMPLE_SERVICE
	$(INSTALL) -D -m 0755 $(@D)/board/rootfs/etc/init.d/web_server \
		$(TARGET_DIR)/etc/init.d/web_server
	$(INSTALL) -D -m 0644 $(@D)/board/rootfs/etc/default/web_server \
		$(TARGET_DIR)/etc/default/web_server
	$(INSTALL) -D -m 0644 $(@D)/board/rootfs/var/www/watchdog_page.html \
		$(TARGET_DIR)/var/www/watchdog_page.html
endef
CUSTOS_POST_INSTALL_TARGET_HOOKS += CUSTOS_INSTALL_EXAMPLE_SERVICE
endif

# custos stays in the foreground and relies on init's respawn: an
# /etc/init.d/S01custos script would have to background it, and then
# nothing restarts custos when it exits.
ifeq ($(BR2_PACKAGE_CUSTOS_INITTAB),y)
CUSTOS_INITTAB_SNIPPET = $(CUSTOS_PKGDIR)/inittab.$(if $(BR2_INIT_BUSYBOX),busybox,sysvinit)
# BusyBox init runs the ::shutdown: lines in order, all before its SIGTERM to
# every process: `custos shutdown` goes before the first of them (rcK stops
# the services, umount takes state_dir away), or at the end if there is none.
define CUSTOS_ADD_INITTAB_ENTRY
	if [ ! -f $(TARGET_DIR)/etc/inittab ]; then \
		echo "custos: no $(TARGET_DIR)/etc/inittab to add the respawn entry to" >&2; \
		exit 1; \
	fi
	grep -q '^[^#]*/usr/sbin/custos run' $(TARGET_DIR)/etc/inittab || \
		cat $(CUSTOS_INITTAB_SNIPPET) >> $(TARGET_DIR)/etc/inittab
	$(if $(BR2_INIT_BUSYBOX),$(CUSTOS_ADD_INITTAB_SHUTDOWN))
endef
define CUSTOS_ADD_INITTAB_SHUTDOWN
	if ! grep -q '^[^#]*/usr/sbin/custos shutdown' $(TARGET_DIR)/etc/inittab; then \
		awk -v snippet=$(CUSTOS_PKGDIR)/inittab.busybox-shutdown \
			'BEGIN { while ((getline l < snippet) > 0) s = s l "\n" } \
			!done && /^[^#:]*:[^:]*:shutdown:/ { printf "%s", s; done = 1 } \
			{ print } END { if (!done) printf "%s", s }' \
			$(TARGET_DIR)/etc/inittab > $(TARGET_DIR)/etc/inittab.custos && \
		mv $(TARGET_DIR)/etc/inittab.custos $(TARGET_DIR)/etc/inittab; \
	fi
endef
CUSTOS_TARGET_FINALIZE_HOOKS += CUSTOS_ADD_INITTAB_ENTRY
endif

$(eval $(cargo-package))
