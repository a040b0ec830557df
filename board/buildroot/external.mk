include $(sort $(wildcard $(BR2_EXTERNAL_CUSTOS_PATH)/package/*/*.mk))
